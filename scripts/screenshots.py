"""Screenshots of the clinic web app with the demo data, for the docs (docs/screenshots/*.png).

Starts `benzotaper serve --demo` on a free loopback port with a throwaway data folder (SQLite), logs in
with the demo accounts in headless Chromium (Debian's /usr/bin/chromium driven by Playwright; install it
with `bash scripts/install-chromium.sh`, never `playwright install`) and saves:

  login.png            the login page
  patient-list.png     the care team's patients with their alerts
  patient.png          a patient's page, full length (chart, levels, mirror analysis, diary)
  regimen-preview.png  a free-text regimen read back before saving
  plan-builder.png     the plan builder with a plan shown (chart and first steps; top 1500 px)
  plan-approved.png    the plan just approved as a new version (top 1500 px)
  diary-phone.png      the patient's diary on a 390 x 844 phone screen, full length
  worklist.png         the clinician's worklist (where a clinician lands after logging in)
  fit.png              this patient's model on the patient page (fit, eliminator, samples, next sample)
  replan.png           a re-plan drafted after a CIWA-B, beside the approved version, waiting for approval
  guided-comparison.png  the plan guided by this patient's levels, with the fixed-against-guided side-by-side

Console errors and Content-Security-Policy violations seen on each page are printed; the exit status is
1 when there were any. Usage: .venv/bin/python scripts/screenshots.py [--out DIR] [--url URL]
(--url: use a server already running the demo instead of starting one).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
PATIENT = "Marek W."  # the demo patient with a login (demo-patient)
CSP_PROBE = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline"));
});
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def demo_server(port: int) -> Iterator[str]:
    """`benzotaper serve --demo` in a temporary data folder; yields its base URL, stops it afterwards."""
    data = tempfile.mkdtemp(prefix="benzotaper-shots-")
    env = dict(os.environ, BENZOTAPER_DATA_DIR=data, BENZOTAPER_TIME_ZONE=os.environ.get("TZ_DEMO", "Europe/Warsaw"))
    env.pop("DATABASE_URL", None)
    code = "from benzotaper.cli import main; main()"
    cmd = [sys.executable, "-c", code, "serve", "--demo", "--port", str(port), "--workers", "1", "--threads", "4"]
    log = open(Path(data) / "server.log", "w+")  # noqa: SIM115 (closed below)
    server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if server.poll() is not None:
                log.seek(0)
                raise SystemExit(f"the demo server exited ({server.returncode}):\n{log.read()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the demo server did not answer /healthz within 180 s")
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
        shutil.rmtree(data, ignore_errors=True)


class Shooter:
    """Pages in one browser, with each page's console errors and CSP violations kept by name."""

    def __init__(self, browser: Any, base: str, out: Path) -> None:
        self.browser, self.base, self.out = browser, base, out
        self.problems: dict[str, list[str]] = {}
        self._errors: list[str] = []

    def context(self, password: str, user: str | None, **options: Any) -> Any:
        ctx = self.browser.new_context(locale="en-GB", timezone_id="Europe/Warsaw", **options)
        ctx.set_default_timeout(30_000)
        ctx.add_init_script(CSP_PROBE)
        page = ctx.new_page()

        def console(msg: Any) -> None:
            url = msg.location.get("url", "")
            if msg.type == "error":
                self._errors.append(f"console: {msg.text} {url}".strip())

        page.on("console", console)
        page.on("pageerror", lambda exc: self._errors.append(f"page error: {exc}"))
        if user is not None:
            page.goto(f"{self.base}/login/")
            page.fill("#id_username", user)
            page.fill("#id_password", password)
            with page.expect_navigation():
                page.click("form button[type=submit].primary")
            if "/login/" in page.url:
                raise SystemExit(f"could not log in as {user}")
        return page

    def shot(self, page: Any, name: str, full_page: bool = False, max_height: int | None = None) -> None:
        """Save NAME.png: the viewport, the whole page, or the whole page cut at max_height pixels."""
        page.wait_for_load_state("load")
        if page.locator("#chart").count():
            page.wait_for_selector("#chart[data-ready='1']")
            page.wait_for_timeout(400)  # Plotly's responsive relayout
        path = self.out / f"{name}.png"
        if max_height is not None:
            height = min(max_height, int(page.evaluate("document.documentElement.scrollHeight")))
            width = int(page.viewport_size["width"])
            page.screenshot(path=str(path), full_page=True, clip={"x": 0, "y": 0, "width": width, "height": height})
        else:
            page.screenshot(path=str(path), full_page=full_page)
        found = self._errors + [f"CSP: {v}" for v in page.evaluate("window.__csp || []")]
        self._errors = []
        self.problems[name] = found
        print(
            f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}"
            + (f"  PROBLEMS: {found}" if found else "")
        )


    def shot_element(self, page: Any, selector: str, name: str) -> None:
        """Save NAME.png: one element of the page (e.g. a card)."""
        path = self.out / f"{name}.png"
        page.locator(selector).screenshot(path=str(path))
        found = self._errors + [f"CSP: {v}" for v in page.evaluate("window.__csp || []")]
        self._errors = []
        self.problems[name] = found
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        print(f"{shown}" + (f"  PROBLEMS: {found}" if found else ""))


def demo_password() -> str:
    """DEMO_PASSWORD from benzotaper/web/demo.py, read without importing Django."""
    import ast

    import benzotaper

    source = Path(benzotaper.__file__).parent / "web" / "demo.py"
    for node in ast.parse(source.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "DEMO_PASSWORD" for t in node.targets):
            return str(ast.literal_eval(node.value))
    raise SystemExit(f"no DEMO_PASSWORD in {source}")


def run(base: str, out: Path, chromium: str) -> int:
    password = demo_password()
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        s = Shooter(browser, base, out)

        anon = s.context(password, None, viewport=DESKTOP)
        anon.goto(f"{base}/login/")
        s.shot(anon, "login")
        anon.context.close()

        page = s.context(password, "demo-clinician", viewport=DESKTOP)
        page.goto(f"{base}/worklist/")
        s.shot(page, "worklist")
        page.goto(f"{base}/patients/")
        s.shot(page, "patient-list")

        with page.expect_navigation():
            page.click(f"table.list a:has-text('{PATIENT}')")
        patient_url = page.url.rstrip("/")
        s.shot(page, "patient", full_page=True)
        s.shot_element(page, "#fit", "fit")

        with page.expect_navigation():  # before any new plan: an approval elsewhere would make it stale
            page.click("#replans a")
        s.shot(page, "replan", max_height=1500)

        page.goto(f"{patient_url}/plan/guided/")
        with page.expect_navigation():
            page.click("button[name=action][value=preview]")
        page.locator("#comparison").wait_for()
        s.shot(page, "guided-comparison", max_height=1800)

        page.goto(f"{patient_url}/regimen/")
        page.fill("#id_sig", "alprazolam 0.5 mg mane + 1 mg nocte")
        with page.expect_navigation():
            page.click("button[name=action][value=preview]")
        page.locator("#preview").wait_for()
        s.shot(page, "regimen-preview")

        page.goto(f"{patient_url}/plan/")
        with page.expect_navigation():
            page.click("button[name=action][value=preview]")
        page.locator("#draft").wait_for()
        s.shot(page, "plan-builder", max_height=1500)  # the step table runs to ~45 rows

        with page.expect_navigation():
            page.click("#approve")
        s.shot(page, "plan-approved", max_height=1500)
        page.context.close()

        phone = s.context(
            password, "demo-patient", viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2
        )
        phone.goto(f"{base}/diary/")
        s.shot(phone, "diary-phone", full_page=True)
        phone.context.close()
        browser.close()
    bad = {k: v for k, v in s.problems.items() if v}
    if bad:
        print(f"console errors or CSP violations on: {', '.join(bad)}", file=sys.stderr)
    return 1 if bad else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots", help="where the PNGs go")
    parser.add_argument("--url", help="base URL of a running demo server (default: start one)")
    parser.add_argument("--port", type=int, default=0, help="port for the started server (default: a free one)")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="the Chromium binary")
    args = parser.parse_args()
    if not Path(args.chromium).exists():
        print(f"{args.chromium} is missing: run `bash scripts/install-chromium.sh`", file=sys.stderr)
        return 2
    if args.url:
        return run(args.url.rstrip("/"), args.out, args.chromium)
    with demo_server(args.port or free_port()) as base:
        return run(base, args.out, args.chromium)


if __name__ == "__main__":
    sys.exit(main())
