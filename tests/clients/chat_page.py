"""The dev stack's chat page in a real headless Chromium (Debian's chromium + chromium-driver, driven by
Selenium), against `devstack` running the function with the OAuth2 consent stand-in, a reasoning model, the
`broken` tool denied, `TOOL_APPROVAL=helloworld` and MCP stand-ins speaking 2026-07-28 (whose `book_table` and
`sign_terms` ask the user). Checks what a person would see:

1. a question typed and sent with Enter; the consent button opening the stand-in provider's page; "Allow"
   clicked there; the turn going on by itself: the tool call with its arguments and result, the answer
   streamed delta by delta, the reasoning folded away but there;
2. a multi-line question (Shift+Enter) whose tool call the gateway denies, marked failed;
3. a failing model: the error with its code;
4. approvals: a call to `helloworld` shown as a card (tool, arguments, Approve, Decline) and not run;
   Approve → the tool runs and the answer uses its result; Decline → the model says the user declined;
5. a reload: the same session, its history back from GET /sessions/{id} (the approval cards as answered),
   fitting a phone's width; a request left waiting is still answerable after a reload;
6. a tool's question: `book_table`'s form built from its schema (a required number, a list, a checkbox, a
   text), not sent while a required field is empty, filled and submitted → the call is repeated with the
   answer and its result shown; `sign_terms`'s link, declined → the tool hears it; after a reload both
   come back answered, the form as it was filled;
7. "New session": a new id, an empty page, kept across a reload.

CHAT_URL is the page. With SCREENSHOT=<path>, a PNG of the page after step 4 is written there (README).
Exits non-zero naming the check that broke; a missing browser is a failure, never a skip.
"""

import os
import re
import shutil
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

CHAT_URL = os.environ["CHAT_URL"]
SCREENSHOT = os.environ.get("SCREENSHOT")
# Liveness bounds, not timings: a debug build on a shared machine.
WAIT = 60


def fail(what, driver=None):
    page = ""
    if driver is not None:
        try:
            page = driver.find_element(By.TAG_NAME, "body").text
        except Exception as error:  # the page itself may be what broke
            page = f"(no page text: {error})"
    sys.exit(f"chat page check failed: {what}\n--- page text ---\n{page}")


def check(condition, what, driver):
    if not condition:
        fail(what, driver)


def browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    if not chromium or not chromedriver:
        fail(
            f"no browser: chromium={chromium!r} chromedriver={chromedriver!r}; "
            "install Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; .ci/run does)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1000,900", "--force-device-scale-factor=1", "--no-first-run"):
        options.add_argument(argument)
    # The driver is the Debian one: Selenium Manager must not go looking for (or download) another.
    return webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)


def wait_for(driver, condition, what, timeout=WAIT):
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.05).until(lambda d: condition(d))
    except TimeoutException:
        fail(f"timed out waiting for {what}", driver)


def text(element):
    return element.get_attribute("textContent")


def idle(driver):
    return driver.find_element(By.ID, "transcript").get_attribute("aria-busy") == "false"


def ready(driver):
    # The page has drawn the stored conversation (or found none) and focused the input.
    return driver.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true"


def send(driver, *keys):
    box = driver.find_element(By.ID, "input")
    box.send_keys(*keys)


def turns(driver):
    return driver.find_elements(By.CSS_SELECTOR, ".turn-agent")


# Counts every text the answers show while streaming: more than one means deltas were drawn as they came.
WATCH_ANSWERS = """
window.answerTexts = [];
new MutationObserver(() => {
  for (const a of document.querySelectorAll('.answer.streaming')) {
    const t = a.textContent;
    if (t && window.answerTexts[window.answerTexts.length - 1] !== t) window.answerTexts.push(t);
  }
}).observe(document.getElementById('transcript'), {subtree: true, childList: true, characterData: true});
"""


def tool_turn_with_consent(driver):
    driver.execute_script(WATCH_ANSWERS)
    send(driver, "What time is it in UTC?", Keys.ENTER)
    bubble = wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".turn-user .bubble"), "the user bubble")
    check(text(bubble[0]) == "What time is it in UTC?", "Enter sent the question as typed", driver)
    link = wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".consent-link"), "the consent button")[0]
    check("Authorize calendar" in link.text, f"the consent button names the provider: {link.text!r}", driver)
    check("/oauth2/authorize" in link.get_attribute("href"), "the button opens the provider's page", driver)
    check(link.get_attribute("target") == "_blank", "the provider's page opens beside the chat", driver)
    check(not idle(driver), "the turn is still running while it waits for the consent", driver)

    chat_window = driver.current_window_handle
    link.click()
    wait_for(driver, lambda d: len(d.window_handles) == 2, "the provider's page in a new window")
    driver.switch_to.window([h for h in driver.window_handles if h != chat_window][0])
    allow = wait_for(driver, lambda d: d.find_elements(By.LINK_TEXT, "Allow"), "the provider's Allow link")[0]
    allow.click()
    wait_for(driver, lambda d: "You authorized calendar" in d.find_element(By.TAG_NAME, "body").text,
             "the function's callback page")
    driver.close()
    driver.switch_to.window(chat_window)

    wait_for(driver, idle, "the turn to end after the consent")
    turn = turns(driver)[0]
    consent = turn.find_element(By.CSS_SELECTOR, ".consent")
    check("done" in consent.get_attribute("class"), "the consent card says the turn went on", driver)
    tool = wait_for(driver, lambda d: turn.find_elements(By.CSS_SELECTOR, "details.tool"), "the tool card")[0]
    check("ok" in tool.get_attribute("class"), "the tool call succeeded", driver)
    check(text(tool.find_element(By.CSS_SELECTOR, ".tool-name")).endswith("getutctime"), "the tool's name", driver)
    check(text(tool.find_element(By.CSS_SELECTOR, ".tool-args")) == "{}", "the tool's arguments", driver)
    result = text(tool.find_element(By.CSS_SELECTOR, ".tool-result"))
    check(re.search(r"\d{4}-\d{2}-\d{2}", result), f"the tool's result is a date and time: {result!r}", driver)
    answer = turn.find_element(By.CSS_SELECTOR, ".answer")
    check("The tool said:" in answer.text and result in answer.text, f"the answer uses the result: {answer.text!r}",
          driver)
    check("streaming" not in answer.get_attribute("class"), "the answer is no longer marked streaming", driver)
    seen = driver.execute_script("return window.answerTexts")
    check(len(seen) >= 2 and all(answer.text.startswith(t) for t in seen),
          f"the answer was drawn delta by delta, not at once: {seen!r}", driver)
    reasoning = turn.find_element(By.CSS_SELECTOR, "details.reasoning")
    check(reasoning.get_attribute("open") is None, "the reasoning is folded", driver)
    check("Let me think" in text(reasoning), "the reasoning is there when unfolded", driver)
    return result


DENIED_QUESTION = "Use the broken tool\nplease"


def denied_tool(driver):
    send(driver, "Use the broken tool", Keys.SHIFT, Keys.ENTER, Keys.SHIFT, "please")
    check(driver.find_element(By.ID, "input").get_attribute("value") == DENIED_QUESTION,
          "Shift+Enter is a new line, not a send", driver)
    send(driver, Keys.ENTER)
    wait_for(driver, lambda d: len(turns(d)) == 2, "the second turn")
    wait_for(driver, idle, "the second turn to end")
    bubbles = driver.find_elements(By.CSS_SELECTOR, ".turn-user .bubble")
    check(text(bubbles[1]) == DENIED_QUESTION, "the question keeps its line break", driver)
    turn = turns(driver)[1]
    tool = turn.find_element(By.CSS_SELECTOR, "details.tool")
    check(text(tool.find_element(By.CSS_SELECTOR, ".tool-name")).endswith("broken"), "the denied tool's name", driver)
    check("failed" in tool.get_attribute("class"), "the denied call is marked failed", driver)
    check("tool_error" in text(tool.find_element(By.CSS_SELECTOR, ".tool-status")), "its status names why", driver)
    check("denied" in text(tool.find_element(By.CSS_SELECTOR, ".tool-result")), "its result says denied", driver)
    check(text(tool.find_element(By.CSS_SELECTOR, ".tool-args")) == "{}", "its arguments", driver)
    check(turn.find_elements(By.CSS_SELECTOR, ".answer"), "the turn still answers", driver)


def asked_for_approval(driver, name):
    """Sends "Say hello to <name>": the turn ends with an approval card, the call not made. The card."""
    count = len(turns(driver))
    send(driver, f"Say hello to {name}", Keys.ENTER)
    wait_for(driver, lambda d: len(turns(d)) == count + 1, f"the turn asking to greet {name}")
    wait_for(driver, idle, "the asking turn to end")
    turn = turns(driver)[count]
    card = wait_for(driver, lambda d: turn.find_elements(By.CSS_SELECTOR, ".approval"), "the approval card")[0]
    check(text(card.find_element(By.CSS_SELECTOR, ".approval-tool")).endswith("helloworld"), "the card names the tool",
          driver)
    check(f'"name": "{name}"' in text(card.find_element(By.CSS_SELECTOR, ".approval-args")),
          f"the card shows the arguments: {text(card)!r}", driver)
    check(not turn.find_elements(By.CSS_SELECTOR, "details.tool"), "the call waits: no tool card yet", driver)
    return card


def answered_turn(driver, card, button):
    count = len(turns(driver))
    card.find_element(By.CSS_SELECTOR, button).click()
    wait_for(driver, lambda d: len(turns(d)) == count + 1, "the turn the answer resumes")
    wait_for(driver, idle, "the resumed turn to end")
    check(not card.find_elements(By.CSS_SELECTOR, "button"), "an answered card has no buttons left", driver)
    return turns(driver)[count]


def approvals(driver):
    card = asked_for_approval(driver, "Ada")
    turn = answered_turn(driver, card, ".approve")
    check("approved" in card.get_attribute("class"), "the card says approved", driver)
    tool = wait_for(driver, lambda d: turn.find_elements(By.CSS_SELECTOR, "details.tool.ok"), "the approved call")[0]
    check(text(tool.find_element(By.CSS_SELECTOR, ".tool-name")).endswith("helloworld"), "the approved tool ran",
          driver)
    check("Hello, Ada!" in text(tool.find_element(By.CSS_SELECTOR, ".tool-result")), "with its result", driver)
    check("Hello, Ada!" in turn.find_element(By.CSS_SELECTOR, ".answer").text, "the answer uses it", driver)

    card = asked_for_approval(driver, "Bo")
    turn = answered_turn(driver, card, ".decline")
    check("declined" in card.get_attribute("class"), "the card says declined", driver)
    check(not turn.find_elements(By.CSS_SELECTOR, "details.tool.ok"), "the declined call did not run", driver)
    answer = turn.find_element(By.CSS_SELECTOR, ".answer").text
    check("declined" in answer and "Hello, Bo!" not in answer, f"the model says the user declined: {answer!r}",
          driver)


def failing_model(driver):
    send(driver, "Break, please [fault:401]", Keys.ENTER)
    wait_for(driver, lambda d: len(turns(d)) == 3, "the third turn")
    wait_for(driver, idle, "the failing turn to end")
    error = wait_for(driver, lambda d: turns(d)[2].find_elements(By.CSS_SELECTOR, ".error"), "the error")[0]
    code = text(error.find_element(By.TAG_NAME, "code"))
    check(code == "model_unauthorized", f"the error shows its code: {code!r}", driver)
    check(len(error.text) > len(code), "and its message", driver)


def reload_keeps_history(driver, session, result):
    driver.refresh()
    wait_for(driver, ready, "the page to load again")
    check(driver.find_element(By.ID, "session-id").text == session, "the same session after reload", driver)
    bubbles = driver.find_elements(By.CSS_SELECTOR, ".turn-user .bubble")
    texts = [text(b) for b in bubbles]
    # The failed turn is not stored (the function keeps nothing of a failed turn): the others come back.
    asked = ["What time is it in UTC?", DENIED_QUESTION, "Say hello to Ada", "Say hello to Bo"]
    check(texts == asked, f"the questions came back: {texts!r}", driver)
    ada, bo = turns(driver)[2], turns(driver)[3]
    check("approved" in ada.find_element(By.CSS_SELECTOR, ".approval").get_attribute("class"),
          "the approved card comes back approved", driver)
    check("Hello, Ada!" in text(ada.find_element(By.CSS_SELECTOR, "details.tool.ok .tool-result")),
          "the approved call's result comes back after its card", driver)
    check("declined" in bo.find_element(By.CSS_SELECTOR, ".approval").get_attribute("class"),
          "the declined card comes back declined", driver)
    check(not driver.find_elements(By.CSS_SELECTOR, ".approval button"), "no answered card has buttons", driver)
    first = turns(driver)[0]
    tool = first.find_element(By.CSS_SELECTOR, "details.tool")
    check(result in text(tool.find_element(By.CSS_SELECTOR, ".tool-result")), "the tool result came back", driver)
    check(result in first.find_element(By.CSS_SELECTOR, ".answer").text, "the answer came back", driver)
    check("Let me think" in text(first.find_element(By.CSS_SELECTOR, "details.reasoning")), "the reasoning too",
          driver)
    check(not driver.find_elements(By.CSS_SELECTOR, ".consent"), "a consent prompt is not part of the history",
          driver)


def waiting_across_a_reload(driver):
    """A request left waiting is still there after a reload, with its buttons, and Approve runs it."""
    asked_for_approval(driver, "Cy")
    driver.refresh()
    wait_for(driver, ready, "the page to load with a request waiting")
    card = turns(driver)[-1].find_element(By.CSS_SELECTOR, ".approval")
    check(card.find_elements(By.CSS_SELECTOR, "button.approve"), "the waiting card keeps its buttons", driver)
    turn = answered_turn(driver, card, ".approve")
    check("Hello, Cy!" in turn.find_element(By.CSS_SELECTOR, ".answer").text, "approved after the reload", driver)


def asked_a_question(driver, question):
    """Sends `question`: the turn ends with a question card, the asking call marked waiting. The card."""
    count = len(turns(driver))
    send(driver, question, Keys.ENTER)
    wait_for(driver, lambda d: len(turns(d)) == count + 1, f"the turn of {question!r}")
    wait_for(driver, idle, "the asking turn to end")
    turn = turns(driver)[count]
    card = wait_for(driver, lambda d: turn.find_elements(By.CSS_SELECTOR, "form.question"), "the question card")[0]
    call = turn.find_element(By.CSS_SELECTOR, "details.tool")
    check("asked" in call.get_attribute("class") and "waiting" in text(call.find_element(By.CSS_SELECTOR, ".tool-status")),
          f"the call that asked waits for the answer: {text(call)!r}", driver)
    check(not turn.find_elements(By.CSS_SELECTOR, ".answer"), "the question is a card, not an answer bubble", driver)
    return card


def questions(driver):
    card = asked_a_question(driver, "Please book a table")
    check(text(card.find_element(By.CSS_SELECTOR, ".question-tool")).endswith("book_table"), "the card names the tool",
          driver)
    check(text(card.find_element(By.CSS_SELECTOR, ".question-message")) == "For how many guests?", "the question",
          driver)
    fields = {f.find_element(By.CSS_SELECTOR, "input, select").get_attribute("name"): f
              for f in card.find_elements(By.CSS_SELECTOR, ".field")}
    check(sorted(fields) == ["guests", "high_chair", "name", "seating"], f"one field per property: {sorted(fields)}",
          driver)
    guests = fields["guests"].find_element(By.TAG_NAME, "input")
    check((guests.get_attribute("type"), guests.get_attribute("min"), guests.get_attribute("max"),
           guests.get_attribute("step")) == ("number", "1", "20", "1"), "an integer in its range", driver)
    check(guests.get_attribute("required") is not None and fields["guests"].find_elements(By.CSS_SELECTOR, ".field-required"),
          "the required field is marked and required", driver)
    check("Guests" in text(fields["guests"]), "labelled by its title", driver)
    seating = fields["seating"].find_element(By.TAG_NAME, "select")
    options = [o.get_attribute("value") for o in seating.find_elements(By.TAG_NAME, "option")]
    check(options == ["", "indoors", "terrace"], f"the choice lists its values (and none): {options}", driver)
    check(fields["high_chair"].find_element(By.TAG_NAME, "input").get_attribute("type") == "checkbox", "a yes/no",
          driver)
    name = fields["name"].find_element(By.TAG_NAME, "input")
    check(name.get_attribute("maxlength") == "60" and name.get_attribute("required") is None, "an optional text",
          driver)
    buttons = [text(b) for b in card.find_elements(By.CSS_SELECTOR, ".question-actions button")]
    check(buttons == ["Submit", "Decline", "Cancel"], f"MCP's three answers: {buttons}", driver)

    # Submit with the required field empty: the browser refuses it, nothing is sent.
    count = len(turns(driver))
    card.find_element(By.CSS_SELECTOR, "button.answer-accept").click()
    check(idle(driver) and len(turns(driver)) == count, "an incomplete form is not sent", driver)
    check(driver.execute_script("return arguments[0].validity.valueMissing", guests), "the browser says why", driver)
    check(card.find_elements(By.CSS_SELECTOR, "button.answer-accept"), "the card still waits", driver)

    guests.send_keys("4")
    seating.find_element(By.CSS_SELECTOR, "option[value=terrace]").click()
    fields["high_chair"].find_element(By.TAG_NAME, "input").click()
    name.send_keys("Ada")
    turn = answered_turn(driver, card, "button.answer-accept")
    check("approved" in card.get_attribute("class") and "Answered" in text(card), "the card says answered", driver)
    check(driver.execute_script("return arguments[0].querySelector('fieldset').disabled", card),
          "an answered form cannot be changed", driver)
    tool = wait_for(driver, lambda d: turn.find_elements(By.CSS_SELECTOR, "details.tool.ok"), "the repeated call")[0]
    booked = "Booked a table for 4 guests. Seating: terrace. With a high chair. Under the name Ada."
    check(booked in text(tool.find_element(By.CSS_SELECTOR, ".tool-result")), f"the tool's result: {text(tool)!r}",
          driver)
    check(booked in turn.find_element(By.CSS_SELECTOR, ".answer").text, "the answer uses it", driver)
    check(len(driver.find_elements(By.CSS_SELECTOR, "details.tool.asked")) == 0,
          "the call is drawn once, where it finally ran", driver)

    # URL mode: a link to open (beside the chat), and the user declines.
    card = asked_a_question(driver, "Please sign the terms")
    link = card.find_element(By.CSS_SELECTOR, "a.question-link")
    check(link.get_attribute("href") == "https://terms.example.com/sign" and link.get_attribute("target") == "_blank",
          f"the link opens the server's page beside the chat: {link.get_attribute('href')!r}", driver)
    check(not card.find_elements(By.CSS_SELECTOR, ".field"), "no form in URL mode", driver)
    turn = answered_turn(driver, card, "button.answer-decline")
    check("declined" in card.get_attribute("class"), "the card says declined", driver)
    tool = wait_for(driver, lambda d: turn.find_elements(By.CSS_SELECTOR, "details.tool.failed"), "the declined call")[0]
    check("declined" in text(tool.find_element(By.CSS_SELECTOR, ".tool-result")), "the tool heard the decline", driver)

    # A reload: both questions come back answered, the form as it was filled, the results after them.
    driver.refresh()
    wait_for(driver, ready, "the page to load with the answered questions")
    cards = driver.find_elements(By.CSS_SELECTOR, "form.question")
    check(len(cards) == 2 and not driver.find_elements(By.CSS_SELECTOR, "form.question button"),
          "the questions come back answered, without buttons", driver)
    check("approved" in cards[0].get_attribute("class") and "declined" in cards[1].get_attribute("class"),
          "each with its answer", driver)
    filled = driver.execute_script(
        "const e = arguments[0].elements; return [e.guests.value, e.seating.value, e.high_chair.checked, e.namedItem('name').value]", cards[0])
    check(filled == ["4", "terrace", True, "Ada"], f"the form as it was filled: {filled}", driver)
    check(any(booked in text(r) for r in driver.find_elements(By.CSS_SELECTOR, "details.tool.ok .tool-result")),
          "the booking's result comes back", driver)


def phone_width(driver):
    # A phone's screen (a window cannot be made this narrow): the history with its tool cards fits it.
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True})
    width = driver.execute_script("return window.innerWidth")
    check(width == 390, f"the emulated phone is 390px wide: {width}", driver)
    overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    check(overflow <= 0, f"the page fits a phone's width (overflows by {overflow}px)", driver)
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def new_session(driver, session):
    driver.find_element(By.ID, "new-session").click()
    fresh = driver.find_element(By.ID, "session-id").text
    check(fresh and fresh != session, f"a new session id: {fresh!r}", driver)
    check(not driver.find_elements(By.CSS_SELECTOR, ".turn-user"), "the page is empty", driver)
    driver.refresh()
    wait_for(driver, ready, "the page to load with the new session")
    check(driver.find_element(By.ID, "session-id").text == fresh, "the new session after reload", driver)
    check(not driver.find_elements(By.CSS_SELECTOR, ".turn-user"), "the new session has no history", driver)


def screenshot(driver, path):
    # Tall enough for the consent's tool turn, the denied call, the error and the approved call; the page
    # scrolls to its end as it streams, so back to the top first.
    driver.set_window_size(1000, 1900)
    # One reasoning unfolded, to show it is there.
    driver.execute_script("document.querySelector('details.reasoning').open = true; window.scrollTo(0, 0)")
    time.sleep(0.2)
    if not driver.save_screenshot(path):
        fail(f"the screenshot could not be written to {path}", driver)


def main():
    driver = browser()
    try:
        driver.set_page_load_timeout(WAIT)
        driver.get(CHAT_URL)
        wait_for(driver, ready, "the page to load")
        session = driver.find_element(By.ID, "session-id").text
        check(session.startswith("chat-"), f"a session id: {session!r}", driver)
        check(driver.find_element(By.ID, "user-id").text.startswith("web-"), "a user id for this browser", driver)
        check(driver.switch_to.active_element == driver.find_element(By.ID, "input"), "the input has focus",
              driver)
        result = tool_turn_with_consent(driver)
        denied_tool(driver)
        failing_model(driver)
        approvals(driver)
        if SCREENSHOT:
            screenshot(driver, SCREENSHOT)
            driver.set_window_size(1000, 900)
        reload_keeps_history(driver, session, result)
        waiting_across_a_reload(driver)
        questions(driver)
        phone_width(driver)
        new_session(driver, session)
    finally:
        driver.quit()
    print("chat page: all checks passed")


if __name__ == "__main__":
    main()
