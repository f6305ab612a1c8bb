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
  // Cards waiting for the user's answer, by request id: approval requests (`mcpr_…`) and tools' questions
  // (`mcpq_…`). Both kinds of a step are answered in one request (the function settles them together).
  waiting: new Map(),
  // Calls that asked the user a question, by call id: the card moves to where the call finally runs.
  asked: new Map(),
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
    const question = contents.find((c) => c.type === 'data' && c.data && c.data.type === 'mcp_elicitation_request');
    if (question) {
      // A tool's question, streamed as an assistant message (its text for any client, its data for us).
      const opened = this.messages.get(m.id);
      if (opened) opened.node.remove();
      this.messages.delete(m.id);
      this.progressed();
      this.question(question.data);
      return;
    }
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
    if (m.type === 'mcp_elicitation_request') {
      // A reloaded session keeps each question as a record of its own.
      for (const c of contents) if (c.type === 'data' && c.data) this.question(c.data);
      return;
    }
    if (m.type === 'mcp_elicitation_response') {
      for (const c of contents) if (c.type === 'data' && c.data) answeredQuestion(c.data);
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
        // A call repeated with the user's answer to its question: drawn once, where it finally runs.
        const earlier = this.calls.get(d.call_id) || state.asked.get(d.call_id);
        if (earlier && earlier !== item) earlier.node.remove();
        state.asked.delete(d.call_id);
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
    if (!data.id || state.waiting.has(data.id)) return;
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
    const card = { id: data.id, node, status, buttons: [approve, decline], reply: null, step: this, settled: false };
    card.decision = null;
    card.expiresAt = Number(data.expires_at) || null;
    state.waiting.set(data.id, card);
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

  // A tool's question (MCP elicitation): a form built from the requested schema, or in URL mode a link to
  // open. Submit, Decline and Cancel are MCP's three answers (accept with the form's content, decline,
  // cancel); the browser checks the form (required fields, ranges, lengths) before Submit goes out.
  question(data) {
    if (!data.id || state.waiting.has(data.id)) return;
    const isLink = data.mode === 'url';
    const node = el('form', 'question');
    const prompt = el('p', 'question-prompt');
    prompt.append('The tool ', el('code', 'question-tool', data.name || 'a tool'), ' asks you:');
    node.append(prompt, el('p', 'question-message', String(data.message ?? '')));
    const fieldset = el('fieldset', 'question-fields');
    const fields = [];
    if (isLink) {
      const link = el('a', 'button question-link', 'Open the page');
      // Only a web page: a `javascript:` URL from a server must not become something to click.
      if (/^https?:\/\//i.test(String(data.url))) link.href = data.url;
      link.target = '_blank';
      link.rel = 'noopener';
      fieldset.classList.add('question-fields-link');
      fieldset.append(link, el('span', 'question-url', String(data.url ?? '')));
    } else {
      const schema = data.requested_schema && typeof data.requested_schema === 'object' ? data.requested_schema : {};
      const required = new Set(Array.isArray(schema.required) ? schema.required : []);
      const properties = schema.properties && typeof schema.properties === 'object' ? schema.properties : {};
      for (const [key, property] of Object.entries(properties)) {
        const field = formField(key, property && typeof property === 'object' ? property : {}, required.has(key));
        fields.push(field);
        fieldset.appendChild(field.node);
      }
    }
    const submit = el('button', 'answer-accept', isLink ? 'Done' : 'Submit');
    const decline = el('button', 'secondary answer-decline', 'Decline');
    const cancel = el('button', 'secondary answer-cancel', 'Cancel');
    submit.type = 'submit';
    decline.type = cancel.type = 'button';
    const status = el('span', 'question-status', 'Waiting for your answer: the tool goes on once you give it.');
    const actions = el('div', 'question-actions');
    actions.append(submit, decline, cancel, status);
    node.append(fieldset, actions);
    this.box.appendChild(node);
    const card = { id: data.id, node, status, buttons: [submit, decline, cancel], reply: null, step: this, settled: false };
    Object.assign(card, { fieldset, fields, expiresAt: Number(data.expires_at) || null });
    state.waiting.set(data.id, card);
    // The call that asked waits too (a live question names no call id: this turn's running call of the tool).
    const call = (data.call_id && this.calls.get(data.call_id)) || this.runningCall(data.name);
    if (call) {
      call.status.textContent = 'waiting for your answer';
      call.node.classList.add('asked');
      if (call.callId) state.asked.set(call.callId, call);
      card.call = call;
    }
    node.addEventListener('submit', (event) => {
      event.preventDefault();
      answerQuestion(card, 'accept', isLink ? undefined : formContent(fields));
    });
    decline.addEventListener('click', () => answerQuestion(card, 'decline'));
    cancel.addEventListener('click', () => answerQuestion(card, 'cancel'));
    scrollToEnd();
  }

  runningCall(name) {
    const running = Array.from(this.calls.values()).filter((c) => c.node.classList.contains('running'));
    return running.reverse().find((c) => c.name.textContent === name) || null;
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

// One field of a question's form, from its JSON Schema property: a choice (`enum`, or `oneOf` of
// `{const, title}`) is a list, a boolean a checkbox, a number or integer a number input with its range, a
// string a text input (email, URL or date by its `format`) with its lengths. `title` labels it (else the
// key), `description` is its hint, a required one is marked.
function formField(key, property, required) {
  const node = el('label', 'field');
  const title = el('span', 'field-title', String(property.title ?? key));
  if (required) title.appendChild(el('span', 'field-required', ' *'));
  node.appendChild(title);
  const choices = choicesOf(property);
  let input;
  let kind;
  if (choices) {
    kind = 'choice';
    input = el('select', 'field-input');
    const none = new Option(required ? 'Choose…' : '—', '');
    if (required) none.disabled = true;
    input.appendChild(none);
    for (const choice of choices) input.appendChild(new Option(choice.title, choice.value));
    input.value = property.default !== undefined ? String(property.default) : '';
  } else if (property.type === 'boolean') {
    kind = 'boolean';
    input = el('input', 'field-check');
    input.type = 'checkbox';
    input.checked = property.default === true;
    node.classList.add('field-boolean');
    node.insertBefore(input, title);
  } else if (property.type === 'number' || property.type === 'integer') {
    kind = property.type;
    input = el('input', 'field-input');
    input.type = 'number';
    input.step = kind === 'integer' ? '1' : 'any';
    if (typeof property.minimum === 'number') input.min = String(property.minimum);
    if (typeof property.maximum === 'number') input.max = String(property.maximum);
    if (typeof property.default === 'number') input.value = String(property.default);
  } else {
    kind = 'string';
    input = el('input', 'field-input');
    input.type = { email: 'email', uri: 'url', date: 'date', 'date-time': 'datetime-local' }[property.format] || 'text';
    if (Number.isInteger(property.minLength)) input.minLength = property.minLength;
    if (Number.isInteger(property.maxLength)) input.maxLength = property.maxLength;
    if (typeof property.default === 'string') input.value = property.default;
  }
  input.name = key;
  if (kind !== 'boolean') {
    input.required = required;
    node.appendChild(input);
  }
  if (property.description) node.appendChild(el('span', 'field-hint', String(property.description)));
  return { key, kind, input, node };
}

function choicesOf(property) {
  if (Array.isArray(property.oneOf) && property.oneOf.every((o) => o && o.const !== undefined)) {
    return property.oneOf.map((o) => ({ value: String(o.const), title: String(o.title ?? o.const) }));
  }
  if (Array.isArray(property.enum)) {
    const names = Array.isArray(property.enumNames) ? property.enumNames : [];
    return property.enum.map((v, i) => ({ value: String(v), title: String(names[i] ?? v) }));
  }
  return null;
}

// The form's content as the schema's types: an optional field left empty is left out.
function formContent(fields) {
  const content = {};
  for (const f of fields) {
    if (f.kind === 'boolean') {
      content[f.key] = f.input.checked;
      continue;
    }
    const value = f.input.value;
    if (value === '') continue;
    if (f.kind === 'integer') content[f.key] = parseInt(value, 10);
    else if (f.kind === 'number') content[f.key] = Number(value);
    else content[f.key] = value;
  }
  return content;
}

// A stored answer's content (JSON text) put back into its form, so a reloaded question shows what was said.
function fillForm(card, text) {
  let content;
  try { content = JSON.parse(text); } catch { return; }
  if (!content || typeof content !== 'object') return;
  for (const f of card.fields || []) {
    if (!(f.key in content)) continue;
    if (f.kind === 'boolean') f.input.checked = content[f.key] === true;
    else f.input.value = String(content[f.key]);
  }
}

// The cards of one step still waiting for the user.
function waitingIn(step) {
  return Array.from(state.waiting.values()).filter((c) => c.step === step && !c.settled);
}

function settle(card, text, className) {
  card.settled = true;
  for (const button of card.buttons) button.remove();
  if (card.fieldset) card.fieldset.disabled = true;
  card.status.textContent = text;
  card.node.classList.add('settled', className);
  state.waiting.delete(card.id);
}

// Records `reply` (the answer's input message) for `card`; once every card of its step has one, they
// are all settled and sent in one request.
function choose(card, reply, chosen) {
  card.reply = reply;
  const step = waitingIn(card.step);
  if (step.some((c) => c.reply === null)) {
    card.status.textContent = `${chosen}: chosen; answer the other requests to go on.`;
    return;
  }
  for (const c of step) settle(c, c.reply.said, c.reply.className);
  run(step.map((c) => c.reply.message));
}

function decide(card, approve) {
  if (card.settled || state.running) return;
  card.decision = approve;
  card.node.classList.toggle('chose-approve', approve);
  card.node.classList.toggle('chose-decline', !approve);
  choose(card, {
    message: {
      role: 'user',
      type: 'mcp_approval_response',
      content: [{ type: 'data', data: { approval_request_id: card.id, approve } }],
    },
    said: approve ? 'Approved.' : 'Declined.',
    className: approve ? 'approved' : 'declined',
  }, approve ? 'Approve' : 'Decline');
}

// What each answer to a question says on its card once given.
const ANSWERED = {
  accept: ['Answered.', 'approved', 'Submit'],
  decline: ['Declined.', 'declined', 'Decline'],
  cancel: ['Dismissed.', 'declined', 'Cancel'],
};

function answerQuestion(card, action, content) {
  if (card.settled || state.running) return;
  const data = { elicitation_request_id: card.id, action };
  if (content !== undefined) data.content = content;
  const [said, className, chosen] = ANSWERED[action];
  card.node.classList.toggle('chose-accept', action === 'accept');
  choose(card, {
    message: { role: 'user', type: 'mcp_elicitation_response', content: [{ type: 'data', data }] },
    said,
    className,
  }, chosen);
}

// A stored answer to a question (reloaded history): its card shows what was answered.
function answeredQuestion(data) {
  const card = state.waiting.get(data.elicitation_request_id);
  if (!card) return;
  if (typeof data.content === 'string' && data.content) fillForm(card, data.content);
  if (data.reason === 'not answered') {
    settle(card, 'Not answered: dismissed when the conversation went on.', 'declined');
    return;
  }
  const [said, className] = ANSWERED[data.action] || ANSWERED.cancel;
  settle(card, said, className);
}

// A stored answer (reloaded history): its card shows what was decided. `approve` is stored as text.
function answered(data) {
  const card = state.waiting.get(data.approval_request_id);
  if (!card) return;
  card.decision = data.approve === true || data.approve === 'true';
  if (data.reason === 'not answered') settle(card, 'Not answered: declined when the conversation went on.', 'declined');
  else settle(card, card.decision ? 'Approved.' : 'Declined.', card.decision ? 'approved' : 'declined');
}

// A new question while requests wait: the function declines them as unanswered (and does not repeat a
// call whose question nobody answered).
function abandonWaiting() {
  for (const card of Array.from(state.waiting.values())) {
    const isQuestion = Boolean(card.fieldset);
    settle(card, `Not answered: ${isQuestion ? 'dismissed' : 'declined'} when the conversation went on.`, 'declined');
    if (card.call) card.call.status.textContent = 'not answered';
  }
  state.asked.clear();
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

// One turn: `input` (a question, or the answers to approval requests and tools' questions) in this
// session, streamed into a new agent turn on the page.
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
  // Requests and questions still waiting: answerable until they expire.
  for (const card of Array.from(state.waiting.values())) {
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
  state.waiting.clear();
  state.asked.clear();
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
