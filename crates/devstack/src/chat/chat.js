// The dev stack's chat page: a client of the function's `POST /process` (AgentScope's streamed protocol)
// and `GET /sessions/{id}`, reached through the dev stack's same-origin proxy. Plain DOM, no framework.
// Everything the function or a tool says is put on the page as text (textContent), never as markup.
'use strict';

const KEYS = { user: 'fc-chat.user', session: 'fc-chat.session' };

const els = {
  transcript: document.getElementById('transcript'),
  empty: document.getElementById('empty'),
  form: document.getElementById('composer'),
  input: document.getElementById('input'),
  send: document.getElementById('send'),
  newSession: document.getElementById('new-session'),
  userId: document.getElementById('user-id'),
  sessionId: document.getElementById('session-id'),
};

// localStorage may be unavailable (private mode, a file:// origin): the page then works for this tab only.
const store = {
  get(key) { try { return localStorage.getItem(key); } catch { return null; } },
  set(key, value) { try { localStorage.setItem(key, value); } catch { /* this tab only */ } },
};

// crypto.getRandomValues, not randomUUID: the latter exists only in secure contexts, and a phone reaching
// the dev stack over the LAN is not one. Ids carry no colon (the function refuses one in a session id).
function randomId(prefix) {
  const bytes = new Uint8Array(8);
  crypto.getRandomValues(bytes);
  return prefix + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

const state = {
  user: store.get(KEYS.user) || randomId('web-'),
  session: store.get(KEYS.session) || randomId('chat-'),
  running: null, // the AbortController of the turn streaming now
  approvals: new Map(), // approval request id → its card, while it waits for the user's answer
};
store.set(KEYS.user, state.user);
store.set(KEYS.session, state.session);

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function scrollToEnd() {
  window.scrollTo({ top: document.body.scrollHeight });
}

// A tool's output is the JSON text of its MCP content blocks: show their text, else the JSON as sent.
function toolOutputText(output) {
  if (typeof output !== 'string') return JSON.stringify(output, null, 2);
  try {
    const blocks = JSON.parse(output);
    if (Array.isArray(blocks)) {
      return blocks.map((b) => (b && typeof b.text === 'string' ? b.text : JSON.stringify(b))).join('\n');
    }
  } catch { /* not JSON: shown as is */ }
  return output;
}

function prettyArguments(text) {
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch { return text; }
}

// One agent turn on the page: the `message` and `content` objects of the protocol, whether they stream in
// (`in_progress`, deltas, `completed`) or come back whole from the stored session.
class AgentTurn {
  constructor(parent) {
    this.box = el('div', 'turn-agent');
    parent.appendChild(this.box);
    this.messages = new Map(); // msg id → {kind, node, ...}
    this.calls = new Map(); // call id → tool card
    this.consents = [];
  }

  // Anything after a consent prompt means the user allowed it and the turn went on.
  progressed() {
    for (const consent of this.consents.splice(0)) {
      consent.node.classList.add('done');
      consent.status.textContent = 'Authorized: the turn went on.';
    }
  }

  message(m) {
    if (m.type === 'heartbeat') return; // the stream's keep-alive while a tool works: nothing to show
    if (m.status === 'in_progress') {
      this.progressed();
      this.open(m);
      return;
    }
    if (m.status !== 'completed') return;
    const contents = Array.isArray(m.content) ? m.content : [];
    const consent = contents.find((c) => c.type === 'data' && c.data && c.data.type === 'oauth2_authorization');
    if (consent) {
      // Opened as an ordinary message a moment ago: the card takes its place.
      const opened = this.messages.get(m.id);
      if (opened) opened.node.remove();
      this.messages.delete(m.id);
      this.consent(m, consent.data, contents.find((c) => c.type === 'text'));
      return;
    }
    this.progressed();
    if (m.type === 'plugin_call_output') {
      for (const c of contents) if (c.type === 'data' && c.data) this.result(m, c.data);
      return;
    }
    if (m.type === 'mcp_approval_request') {
      for (const c of contents) if (c.type === 'data' && c.data) this.approval(c.data);
      return;
    }
    if (m.type === 'mcp_approval_response') {
      // Only in a reloaded session: the answer the user gave (or the function's "not answered").
      for (const c of contents) if (c.type === 'data' && c.data) answered(c.data);
      return;
    }
    const item = this.messages.get(m.id) || this.open(m);
    if (!item) return;
    for (const c of contents) this.fill(item, c, false);
    if (item.kind === 'answer') item.node.classList.remove('streaming');
    if (item.kind === 'reasoning') item.summary.textContent = 'Reasoning';
  }

  content(c) {
    if (!c.delta) return; // the completed message carries the whole content again
    const item = this.messages.get(c.msg_id);
    if (item) this.fill(item, c, true);
  }

  open(m) {
    let item = null;
    if (m.type === 'reasoning') {
      const node = el('details', 'reasoning');
      const summary = el('summary', '', 'Thinking…');
      const text = el('div', 'reasoning-text');
      node.append(summary, text);
      item = { kind: 'reasoning', node, summary, text };
    } else if (m.type === 'plugin_call' || m.type === 'function_call') {
      item = this.toolCard(null);
      item.kind = 'call';
    } else if (m.type === 'message' && m.role === 'assistant') {
      item = { kind: 'answer', node: el('div', 'answer streaming'), text: null };
      item.text = item.node;
    }
    if (!item) return null;
    this.messages.set(m.id, item);
    if (!item.node.isConnected) this.box.appendChild(item.node);
    scrollToEnd();
    return item;
  }

  fill(item, c, delta) {
    if (c.type === 'text' && (item.kind === 'answer' || item.kind === 'reasoning')) {
      if (delta) item.text.textContent += c.text || '';
      else item.text.textContent = c.text || '';
    } else if (c.type === 'data' && item.kind === 'call' && c.data) {
      const d = c.data;
      if (d.call_id && !item.callId) {
        item.callId = d.call_id;
        this.calls.set(d.call_id, item);
      }
      if (d.name) item.name.textContent = d.name;
      if (typeof d.arguments === 'string') {
        item.argsText = delta ? item.argsText + d.arguments : d.arguments;
        item.args.textContent = delta ? item.argsText : prettyArguments(item.argsText);
      }
    }
    scrollToEnd();
  }

  toolCard(callId) {
    const node = el('details', 'tool running');
    node.open = true;
    const summary = el('summary');
    const name = el('span', 'tool-name', 'tool');
    const status = el('span', 'tool-status', 'calling…');
    summary.append(name, status);
    const body = el('div', 'tool-body');
    const args = el('pre', 'tool-args');
    const result = el('pre', 'tool-result');
    body.append(el('div', 'label', 'Arguments'), args, el('div', 'label', 'Result'), result);
    node.append(summary, body);
    this.box.appendChild(node);
    const card = { node, name, status, args, result, argsText: '', callId };
    if (callId) this.calls.set(callId, card);
    return card;
  }

  // A failed call (the server's isError, the gateway refusing it, a timeout) is a `plugin_call_output`
  // message carrying an error `code` (`tool_error`); the model is told what went wrong and goes on.
  result(m, data) {
    const card = this.calls.get(data.call_id) || this.toolCard(data.call_id);
    // A call that waited for approval (reloaded history) shows up again where it finally ran.
    if (!card.node.isConnected) this.box.appendChild(card.node);
    if (data.name) card.name.textContent = data.name;
    card.result.textContent = toolOutputText(data.output);
    card.node.classList.remove('running');
    const declined = card.approval && card.approval.decision === false;
    const failed = Boolean(m.code) || declined;
    card.node.classList.add(failed ? 'failed' : 'ok');
    card.status.textContent = declined ? 'declined' : failed ? `failed (${m.code})` : 'done';
    scrollToEnd();
  }

  // A call that waits for the user: the tool, its arguments, Approve and Decline. Requests of one model
  // step are answered together (the function settles them all at once): each button records its card's
  // decision, and the answers go out when every card of the step has one.
  approval(data) {
    if (!data.id || state.approvals.has(data.id)) return;
    const node = el('div', 'approval');
    const where = data.server_label ? ` (MCP server ${data.server_label})` : '';
    const prompt = el('p', 'approval-prompt');
    prompt.append('The agent wants to call ', el('code', 'approval-tool', data.name || 'a tool'), `${where}.`);
    const args = el('pre', 'tool-args approval-args', prettyArguments(String(data.arguments ?? '')));
    const approve = el('button', 'approve', 'Approve');
    const decline = el('button', 'secondary decline', 'Decline');
    approve.type = decline.type = 'button';
    const status = el('span', 'approval-status', 'Waiting for your answer: the turn goes on once you give it.');
    const actions = el('div', 'approval-actions');
    actions.append(approve, decline, status);
    node.append(prompt, el('div', 'label', 'Arguments'), args, actions);
    this.box.appendChild(node);
    const card = { id: data.id, node, status, buttons: [approve, decline], decision: null, step: this, settled: false };
    card.expiresAt = Number(data.expires_at) || null;
    state.approvals.set(data.id, card);
    // Reloaded history: the model's call was drawn just before; it reappears when (if) it runs.
    const call = data.call_id && this.calls.get(data.call_id);
    if (call) {
      call.node.remove();
      call.approval = card;
    }
    approve.addEventListener('click', () => decide(card, true));
    decline.addEventListener('click', () => decide(card, false));
    scrollToEnd();
  }

  consent(m, data, text) {
    const node = el('div', 'consent');
    const prompt = text && text.text ? text.text.split(': http')[0] : `The tool needs your permission for ${data.provider}`;
    const link = el('a', 'button consent-link', `Authorize ${data.provider}`);
    // Only a web page: a `javascript:` URL in the event must not become something to click.
    if (/^https?:\/\//i.test(String(data.url))) link.href = data.url;
    link.target = '_blank';
    link.rel = 'noopener';
    const status = el('span', 'consent-status', 'Waiting for you to allow; the turn goes on by itself.');
    node.append(el('p', '', `${prompt}.`), link, status);
    this.box.appendChild(node);
    this.consents.push({ node, status });
    scrollToEnd();
  }

  error(code, message) {
    this.progressed();
    const node = el('div', 'error');
    node.append(el('code', '', code || 'error'), document.createTextNode(message || ''));
    this.box.appendChild(node);
    scrollToEnd();
  }

  note(text) {
    this.box.appendChild(el('p', 'note', text));
  }

  finish() {
    for (const item of this.messages.values()) if (item.kind === 'answer') item.node.classList.remove('streaming');
  }
}

// The cards of one step still waiting for the user.
function waitingIn(step) {
  return Array.from(state.approvals.values()).filter((c) => c.step === step && !c.settled);
}

function settle(card, text, className) {
  card.settled = true;
  for (const button of card.buttons) button.remove();
  card.status.textContent = text;
  card.node.classList.add('settled', className);
  state.approvals.delete(card.id);
}

function decide(card, approve) {
  if (card.settled || state.running) return;
  card.decision = approve;
  card.node.classList.toggle('chose-approve', approve);
  card.node.classList.toggle('chose-decline', !approve);
  const step = waitingIn(card.step);
  if (step.some((c) => c.decision === null)) {
    card.status.textContent = `${approve ? 'Approve' : 'Decline'}: chosen; answer the other requests to go on.`;
    return;
  }
  for (const c of step) settle(c, c.decision ? 'Approved.' : 'Declined.', c.decision ? 'approved' : 'declined');
  run(step.map((c) => ({
    role: 'user',
    type: 'mcp_approval_response',
    content: [{ type: 'data', data: { approval_request_id: c.id, approve: c.decision } }],
  })));
}

// A stored answer (reloaded history): its card shows what was decided. `approve` is stored as text.
function answered(data) {
  const card = state.approvals.get(data.approval_request_id);
  if (!card) return;
  card.decision = data.approve === true || data.approve === 'true';
  if (data.reason === 'not answered') settle(card, 'Not answered: declined when the conversation went on.', 'declined');
  else settle(card, card.decision ? 'Approved.' : 'Declined.', card.decision ? 'approved' : 'declined');
}

// A new question while requests wait: the function declines them as unanswered.
function abandonWaiting() {
  for (const card of Array.from(state.approvals.values())) {
    settle(card, 'Not answered: declined when the conversation went on.', 'declined');
  }
}

function userBubble(text) {
  els.empty.hidden = true;
  const wrap = el('div', 'turn-user');
  wrap.appendChild(el('div', 'bubble', text));
  els.transcript.appendChild(wrap);
  scrollToEnd();
}

// `data: <json>` frames separated by a blank line, as `/process` sends them.
async function* sseEvents(body) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, '\n');
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = frame.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
      if (data) yield JSON.parse(data);
    }
  }
}

async function errorOf(response) {
  const text = await response.text();
  try {
    const body = JSON.parse(text);
    if (body && body.error) return { code: body.error.code, message: body.error.message };
  } catch { /* not our JSON */ }
  return { code: `http_${response.status}`, message: text.slice(0, 500) };
}

function setRunning(controller) {
  state.running = controller;
  els.transcript.setAttribute('aria-busy', controller ? 'true' : 'false');
  els.send.textContent = controller ? 'Stop' : 'Send';
  els.send.type = controller ? 'button' : 'submit';
}

function ask(question) {
  abandonWaiting();
  userBubble(question);
  run([{ role: 'user', type: 'message', content: [{ type: 'text', text: question }] }]);
}

// One turn: `input` (a question, or the answers to approval requests) in this session, streamed into a
// new agent turn on the page.
async function run(input) {
  const turn = new AgentTurn(els.transcript);
  const controller = new AbortController();
  setRunning(controller);
  const session = state.session;
  try {
    const response = await fetch('process', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ input, session_id: session, user_id: state.user, stream: true }),
      signal: controller.signal,
    });
    if (!response.ok) {
      const { code, message } = await errorOf(response);
      turn.error(code, message);
      return;
    }
    let ended = false;
    for await (const event of sseEvents(response.body)) {
      if (event.object === 'message') turn.message(event);
      else if (event.object === 'content') turn.content(event);
      else if (event.object === 'response' && event.status !== 'created' && event.status !== 'in_progress') {
        ended = true;
        if (event.error) turn.error(event.error.code, event.error.message);
        else if (event.status !== 'completed') turn.error(event.status, 'the turn ended without an answer');
      }
    }
    if (!ended) turn.error('stream_ended', 'the stream ended before the turn did');
  } catch (error) {
    if (controller.signal.aborted) turn.note('Stopped.');
    else turn.error('network', String(error && error.message ? error.message : error));
  } finally {
    turn.finish();
    if (state.running === controller) setRunning(null);
  }
}

// The stored conversation, drawn with the same code as a live turn: user messages as bubbles, everything
// between two of them as one agent turn.
async function loadHistory() {
  const session = state.session;
  let response;
  try {
    response = await fetch(`sessions/${encodeURIComponent(session)}?user_id=${encodeURIComponent(state.user)}`);
  } catch (error) {
    new AgentTurn(els.transcript).error('network', String(error));
    return;
  }
  if (response.status === 404) return; // nothing said in this session yet (or memory is off)
  if (!response.ok) {
    const { code, message } = await errorOf(response);
    new AgentTurn(els.transcript).error(code, `the session could not be loaded: ${message}`);
    return;
  }
  const stored = await response.json();
  if (session !== state.session) return; // a new session was started meanwhile
  let turn = null;
  for (const m of stored.messages || []) {
    const content = Array.isArray(m.content) ? m.content : [];
    if (m.role === 'user' && m.type === 'message') {
      userBubble(content.filter((c) => c.type === 'text').map((c) => c.text).join('\n'));
      turn = null;
      continue;
    }
    if (!turn) turn = new AgentTurn(els.transcript);
    turn.message({ ...m, status: 'completed' });
  }
  if (turn) turn.finish();
  // Requests still waiting: answerable until they expire.
  for (const card of Array.from(state.approvals.values())) {
    if (card.expiresAt && card.expiresAt * 1000 <= Date.now()) settle(card, 'Expired: ask again.', 'declined');
  }
  scrollToEnd();
}

function showIds() {
  els.userId.textContent = state.user;
  els.sessionId.textContent = state.session;
  els.sessionId.parentElement.title = `session_id ${state.session}`;
}

function newSession() {
  if (state.running) state.running.abort();
  state.session = randomId('chat-');
  store.set(KEYS.session, state.session);
  state.approvals.clear();
  for (const node of Array.from(els.transcript.children)) if (node !== els.empty) node.remove();
  els.empty.hidden = false;
  showIds();
  els.input.focus();
}

function submit() {
  const question = els.input.value.trim();
  if (!question || state.running) return;
  els.input.value = '';
  autosize();
  ask(question);
}

function autosize() {
  els.input.style.height = 'auto';
  els.input.style.height = `${els.input.scrollHeight + 2}px`;
}

els.form.addEventListener('submit', (event) => {
  event.preventDefault();
  submit();
});
els.send.addEventListener('click', (event) => {
  if (state.running) {
    event.preventDefault();
    state.running.abort();
  }
});
els.input.addEventListener('keydown', (event) => {
  // Enter sends; Shift+Enter is a new line; Enter while an IME composes a word is the IME's.
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    submit();
  }
});
els.input.addEventListener('input', autosize);
els.newSession.addEventListener('click', newSession);

showIds();
// `data-ready` once the stored conversation is drawn (or found empty): the page is then what it will stay
// until the next question.
loadHistory().finally(() => {
  document.body.dataset.ready = 'true';
  els.input.focus();
});
