"""Shared by the browser tests (Debian's Chromium through Playwright): how to launch it,
and a console watcher that catches Content-Security-Policy violations (Chromium reports
each blocked inline script or style, eval, or foreign resource on the console)."""

from __future__ import annotations

from dataclasses import dataclass, field

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]

# Reported by the page itself (securitypolicyviolation events), in case a violation ever
# reached no console message. Added through CDP, so the CSP does not apply to it.
_VIOLATION_LISTENER = """
document.addEventListener("securitypolicyviolation", function (e) {
  console.error("Content Security Policy violation event: " + e.violatedDirective +
                " blocked " + (e.blockedURI || "inline") + " at " + e.sourceFile + ":" +
                e.lineNumber);
});
"""


def launch(pw):
    return pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


@dataclass
class ConsoleWatch:
    """Every console message and page error of the pages it is attached to."""

    messages: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def attach(self, page) -> None:
        page.add_init_script(_VIOLATION_LISTENER)
        page.on("console", self._on_console)
        page.on("pageerror", lambda e: self.errors.append(f"{page.url}: {e}"))

    def _on_console(self, msg) -> None:
        where = (msg.location or {}).get("url", "")
        text = f"{msg.type}: {msg.text}" + (f" [{where}]" if where else "")
        self.messages.append(text)
        if msg.type == "error":
            self.errors.append(text)

    def csp_violations(self) -> list[str]:
        return [m for m in self.messages + self.errors if "Content Security Policy" in m]

    def assert_no_csp_violations(self) -> None:
        found = self.csp_violations()
        assert not found, "CSP violations:\n" + "\n".join(found)


def csp_directives(header: str) -> dict[str, list[str]]:
    """A Content-Security-Policy header as {directive: [sources]} (order does not matter)."""
    out: dict[str, list[str]] = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def log_in(page, base_url: str, username: str, password: str, next_path: str = "/") -> None:
    """Log in through the login form (keyboard only) and wait for the page it leads to."""
    page.goto(f"{base_url}/accounts/login/?next={next_path}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.keyboard.press("Enter")
    page.wait_for_url(base_url + next_path)
