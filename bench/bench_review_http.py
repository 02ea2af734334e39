"""The review screen over HTTP: a real gunicorn server on the 2M-clip benchmark dataset
(bench/scale_db.py builds it once), driven by simulated reviewers from one client process.

Server: .venv/bin/gunicorn relabel_app.wsgi, 4 sync workers by default (--workers,
--threads; see main() for why), DJANGO_DEBUG=false, DB_CONN_MAX_AGE=600 (persistent
connections), RELABEL_DATABASE_NAME=relabel_bench, dev settings, ALLOWED_HOSTS 127.0.0.1.
Before it starts: the bench reviewers' old leases are released, the review tables are
vacuumed when the server runs with autovacuum off (this machine's does), and the run waits
(up to --wait-quiet s) until other processes use under 0.25 cores.

Unloaded probe: one reviewer alone, --probe decisions back to back (not recorded).

Paced phase (issue 6): 20 reviewers, each acting about once a second as a person does.
A reviewer loop: open the next clip (POST /datasets/<id>/start/ the first time, then the
clip's POST /clips/<id>/next/, which finishes the clip and picks the next one; its 302 is
the "next clip" timing), follow the redirect at once (GET /clips/<id>/: "clip page"), then
3 to 5 decisions on rows of the page (htmx POSTs to /clips/<id>/labels/<label>/decide/
with the CSRF header and HX-Request: "decision"), 0.8 to 1.2 s apart. Samples started
during the warm-up are dropped.

Saturated phase: --sat-clients unpaced loops posting decisions as fast as the server
answers, each cycling accept/reject/unsure over the rows of its clip (every post changes
the verdict: an UPDATE and a log entry); decisions/s = 200 answers completed in the
measured window / its length.

Clients: threads in this process (http.client, keep-alive where the server keeps it), logged
in through sessions created in the database; timings are taken at the client around the
whole request (connect, send, wait, read). Server-side times come from gunicorn's access log
(%(D)s: from the parsed request to the response written, without the socket queueing);
CPU time per party (client, gunicorn, its PostgreSQL backends, everything else) and the
load averages before and after each phase show how much other processes competed.

Records clip_page_p50_ms, clip_page_p95_ms, decision_p50_ms, decision_p95_ms,
next_clip_p95_ms (paced, client side) and decisions_per_s_saturated (full dataset only;
not with --quick, --no-record or --app-dir).
Targets: decision p50 <= 10 ms, p95 <= 25 ms; clip page p95 <= 60 ms; next clip p95 <= 25 ms.

Usage: python bench/bench_review_http.py [--quick] [--workers N] [--threads N]
       [--duration S] [--warmup S] [--sat-clients N] [--sat-duration S] [--no-record]
       [--app-dir DIR]   # serve a copy of the app with a change to try
       python bench/bench_review_http.py [--quick] --diagnose   # queries, cProfile, EXPLAIN
           (BENCH_PROFILE_DIR=DIR also writes each request's profile to DIR/<request>.pstats)
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "relabel_app.settings.dev")
from bench import scale_db  # noqa: E402
from bench.common import BENCH_DB, ROOT, loadavg, machine, pct, record  # noqa: E402
from bench.contention import busy_seconds, wait_for_quiet  # noqa: E402

REVIEWER_PREFIX = "bench_rev"
APP_NAME = "bench_review_http"  # PostgreSQL application_name of the server's connections
TARGETS = {"decision_p50_ms": 10, "decision_p95_ms": 25, "clip_page_p95_ms": 60,
           "next_clip_p95_ms": 25}
KINDS = ("next", "page", "decision")
FIGURE = {"next": "next clip", "page": "clip page", "decision": "decision"}


# --- the server -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(conn_max_age: int, app_dir: Path = ROOT) -> dict:
    env = dict(os.environ)
    # The same server as the benchmark's own connection: DATABASE_URL when it is set, else
    # the embedded one (as `make bench` runs). A fixed URL here once sent the server to
    # another PostgreSQL than the one the benchmark had filled (every page a 500).
    if env.get("DATABASE_URL"):
        url = env["DATABASE_URL"]
        sep = "&" if "?" in url else "?"
        env["DATABASE_URL"] = f"{url}{sep}application_name={APP_NAME}"
    env.update({
        "PGAPPNAME": APP_NAME,  # libpq's application_name (pg_backend_pids)
        "RELABEL_DATABASE_NAME": BENCH_DB,
        "DJANGO_SETTINGS_MODULE": "relabel_app.settings.dev",
        "DJANGO_DEBUG": "false",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DB_CONN_MAX_AGE": str(conn_max_age),
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(app_dir),
    })
    return env


@dataclass
class Server:
    proc: subprocess.Popen
    port: int
    access_log: Path
    cmd: list[str]

    def pids(self) -> list[int]:
        import psutil

        try:
            p = psutil.Process(self.proc.pid)
            return [p.pid] + [c.pid for c in p.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def log_offset(self) -> int:
        return self.access_log.stat().st_size if self.access_log.exists() else 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_server(workers: int, threads: int, conn_max_age: int, tmp: Path,
                 app_dir: Path = ROOT) -> Server:
    port = free_port()
    access_log = tmp / "access.log"
    cmd = [str(ROOT / ".venv" / "bin" / "gunicorn"), "relabel_app.wsgi",
           "-b", f"127.0.0.1:{port}", "-w", str(workers), "--threads", str(threads),
           "--access-logfile", str(access_log),
           "--access-logformat", "%(m)s %(U)s %(s)s %(D)s",
           "--error-logfile", str(tmp / "error.log"), "--log-level", "warning"]
    proc = subprocess.Popen(cmd, cwd=app_dir, env=server_env(conn_max_age, app_dir),
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    server = Server(proc=proc, port=port, access_log=access_log, cmd=cmd)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited: {(tmp / 'error.log').read_text()[-3000:]}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/accounts/login/")
            if c.getresponse().status == 200:
                c.close()
                return server
        except OSError:
            time.sleep(0.2)
    server.stop()
    raise SystemExit("gunicorn did not answer within 60 s")


# --- the clients ------------------------------------------------------------------------


class Http:
    """One browser: cookies, the CSRF token, one keep-alive connection."""

    RETRY = (http.client.RemoteDisconnected, http.client.CannotSendRequest,
             http.client.BadStatusLine, ConnectionResetError, BrokenPipeError)

    def __init__(self, port: int, cookies: dict[str, str], csrf: str) -> None:
        self.port, self.cookies, self.csrf = port, dict(cookies), csrf
        self.conn: http.client.HTTPConnection | None = None
        self.retries = 0

    def request(self, method: str, path: str, form: dict | None = None,
                headers: dict | None = None) -> tuple[int, dict, bytes, float]:
        hdrs = {"Accept": "text/html", "User-Agent": "bench_review_http",
                "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        hdrs.update(headers or {})
        body = None
        if form is not None:
            body = urlencode(form).encode()
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            t0 = time.perf_counter()
            try:
                self.conn.request(method, path, body=body, headers=hdrs)
                resp = self.conn.getresponse()
                payload = resp.read()
            except self.RETRY:
                # A kept-alive connection the server closed meanwhile: reconnect, time anew.
                self.conn.close()
                self.conn = None
                self.retries += 1
                if attempt:
                    raise
                continue
            ms = (time.perf_counter() - t0) * 1000
            if resp.will_close:
                self.conn.close()
                self.conn = None
            for raw in resp.headers.get_all("Set-Cookie") or []:
                name, _, value = raw.split(";", 1)[0].partition("=")
                self.cookies[name.strip()] = value.strip()
            return resp.status, dict(resp.getheaders()), payload, ms
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


_LABEL_ROW = re.compile(rb'data-label-id="(\d+)"')
_CSRF = re.compile(rb'"X-CSRFToken": "([^"]+)"')
_CLIP_URL = re.compile(r"^(?:https?://[^/]+)?/clips/(\d+)/$")


@dataclass
class Sample:
    kind: str
    start: float  # seconds since the phase began
    end: float
    ms: float
    status: int


@dataclass
class Reviewer:
    http: Http
    username: str
    dataset_id: int
    clip_id: int | None = None
    labels: list[int] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    finished_queue: bool = False

    def timed(self, t0: float, kind: str, method: str, path: str, **kw):
        start = time.perf_counter() - t0
        status, headers, body, ms = self.http.request(method, path, **kw)
        self.samples.append(Sample(kind, start, time.perf_counter() - t0, ms, status))
        return status, headers, body

    def open_next(self, t0: float) -> bool:
        """POST start/next, follow the redirect to the clip page. False when done."""
        form = {"csrfmiddlewaretoken": self.http.csrf}
        path = (f"/datasets/{self.dataset_id}/start/" if self.clip_id is None
                else f"/clips/{self.clip_id}/next/")
        status, headers, _ = self.timed(t0, "next", "POST", path, form=form)
        loc = headers.get("Location", "")
        m = _CLIP_URL.match(loc)
        if status != 302 or not m:
            self.errors.append(f"next: {status} -> {loc!r}")
            self.finished_queue = status == 302
            return False
        self.clip_id = int(m.group(1))
        status, _, body = self.timed(t0, "page", "GET", f"/clips/{self.clip_id}/")
        if status != 200:
            self.errors.append(f"page: {status}")
            return False
        self.labels = [int(x) for x in _LABEL_ROW.findall(body)]
        token = _CSRF.search(body)
        if token:
            self.http.csrf = token.group(1).decode()
        return True

    def decide(self, t0: float, label_id: int, verdict: str, kind: str = "decision") -> bool:
        status, _, body = self.timed(
            t0, kind, "POST", f"/clips/{self.clip_id}/labels/{label_id}/decide/",
            form={"verdict": verdict},
            headers={"HX-Request": "true", "X-CSRFToken": self.http.csrf,
                     "HX-Current-URL": f"http://127.0.0.1/clips/{self.clip_id}/",
                     "HX-Target": f"label-{label_id}"},
        )
        if status != 200 or f'id="label-{label_id}"'.encode() not in body:
            self.errors.append(f"decide: {status}")
            return False
        return True


def paced_loop(t0: float, stop: threading.Event, r: Reviewer, rng: random.Random) -> None:
    def pause() -> None:
        stop.wait(rng.uniform(0.8, 1.2))

    stop.wait(rng.uniform(0, 1.0))  # reviewers do not start in step
    while not stop.is_set():
        try:
            if not r.open_next(t0):
                if r.finished_queue:
                    return
                pause()
                continue
            pause()
            if not r.labels:
                continue
            for label_id in rng.sample(r.labels, min(len(r.labels), rng.randint(3, 5))):
                if stop.is_set():
                    return
                r.decide(t0, label_id, rng.choices(["accept", "reject", "unsure"],
                                                   weights=[6, 3, 1])[0])
                pause()
        except Exception as e:  # noqa: BLE001 - a client error must not end the benchmark
            r.errors.append(f"{type(e).__name__}: {e}")
            r.http.close()
            pause()


def saturated_loop(t0: float, stop: threading.Event, r: Reviewer) -> None:
    verdicts = ["accept", "reject", "unsure"]
    i = 0
    while not stop.is_set():
        try:
            label_id = r.labels[i % len(r.labels)]
            r.decide(t0, label_id, verdicts[(i // len(r.labels)) % 3], kind="saturated")
        except Exception as e:  # noqa: BLE001
            r.errors.append(f"{type(e).__name__}: {e}")
            r.http.close()
        i += 1


# --- accounting -------------------------------------------------------------------------


def pg_backend_pids() -> list[int]:
    import psycopg
    from django.db import connection

    s = connection.settings_dict
    with psycopg.connect(host=s["HOST"] or None, port=s["PORT"] or None, user=s["USER"],
                         password=s["PASSWORD"] or None, dbname=s["NAME"],
                         autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s",
                            [APP_NAME]).fetchall()
    return [r[0] for r in rows]


def cpu_of(pids: list[int]) -> float:
    import psutil

    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


class CpuWatch:
    """CPU seconds over a span: the machine, this client process, gunicorn, its
    PostgreSQL backends; the rest is other processes (other engineers' work)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.server_pids = server.pids()
        self.pg_pids = pg_backend_pids()
        self.wall = time.perf_counter()
        self.machine = busy_seconds()
        self.client = time.process_time()
        self.gunicorn = cpu_of(self.server_pids)
        self.pg = cpu_of(self.pg_pids)
        self.load_before = loadavg()

    def result(self) -> dict:
        dt = time.perf_counter() - self.wall
        # Backends that connected during the span count from zero.
        pg_pids = sorted(set(self.pg_pids) | set(pg_backend_pids()))
        machine_c = (busy_seconds() - self.machine) / dt
        client = (time.process_time() - self.client) / dt
        gunicorn = (cpu_of(self.server.pids()) - self.gunicorn) / dt
        pg = (cpu_of(pg_pids) - self.pg) / dt
        return {
            "seconds": round(dt, 1), "load_before": self.load_before, "load_after": loadavg(),
            "cores_machine": round(machine_c, 2), "cores_client": round(client, 2),
            "cores_gunicorn": round(gunicorn, 2), "cores_postgres_backends": round(pg, 2),
            "cores_other_processes": round(max(0.0, machine_c - client - gunicorn - pg), 2),
        }


def print_cpu(label: str, c: dict) -> None:
    print(f"  {label}: load average {c['load_before']} -> {c['load_after']}; cores used "
          f"over {c['seconds']} s: machine {c['cores_machine']}, client {c['cores_client']}, "
          f"gunicorn {c['cores_gunicorn']}, its PostgreSQL backends "
          f"{c['cores_postgres_backends']}, other processes {c['cores_other_processes']}")


def server_times(server: Server, start: int, end: int) -> dict[str, list[float]]:
    """Server-side ms per kind from the access log bytes [start, end)."""
    with open(server.access_log, "rb") as f:
        f.seek(start)
        chunk = f.read(end - start).decode(errors="replace")
    out: dict[str, list[float]] = {k: [] for k in KINDS}
    for line in chunk.splitlines():
        parts = line.split()
        if len(parts) != 4:
            continue
        method, path, status, micros = parts
        if method == "POST" and path.endswith("/decide/"):
            kind = "decision"
        elif method == "POST" and (path.endswith("/next/") or path.endswith("/start/")):
            kind = "next"
        elif method == "GET" and re.fullmatch(r"/clips/\d+/", path):
            kind = "page"
        else:
            continue
        out[kind].append(int(micros) / 1000)
    return out


# --- set-up -------------------------------------------------------------------------------


def make_clients(n: int, port: int, dataset_id: int) -> list[Reviewer]:
    """n reviewers (group reviewer), each with a session made in the database and the
    CSRF cookie and token a first GET of the login page hands out."""
    from django.contrib.auth import get_user_model

    User = get_user_model()
    ids = scale_db.seed_users(REVIEWER_PREFIX, n)
    clients = []
    for user in User.objects.filter(pk__in=ids).order_by("username"):
        h = Http(port, {"sessionid": new_session(user)}, "")
        status, _, body, _ = h.request("GET", "/accounts/login/")
        m = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body)
        if status != 200 or not m or "csrftoken" not in h.cookies:
            raise SystemExit(f"no CSRF token from the login page ({status})")
        h.csrf = m.group(1).decode()
        clients.append(Reviewer(http=h, username=user.username, dataset_id=dataset_id))
    return clients


def release_leases(dataset_id: int) -> None:
    """Leases left by an earlier run of this benchmark would hand each reviewer its old
    clip first; a fresh run starts from free slots (finished ones stay finished). Then a
    vacuum of the review tables when autovacuum is off."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "UPDATE review_queueslot s SET leased_to_id = NULL, lease_expires_at = NULL "
            "FROM auth_user u WHERE u.id = s.leased_to_id AND u.username LIKE %s "
            "AND s.dataset_id = %s AND s.done_by_id IS NULL",
            [REVIEWER_PREFIX + "%", dataset_id],
        )
        # This machine's PostgreSQL runs with autovacuum off (a CI setting); vacuum what
        # earlier runs dirtied, as autovacuum would have (review/migrations/0004).
        cur.execute("SHOW autovacuum")
        if cur.fetchone()[0] != "on":
            t0 = time.perf_counter()
            for t in ("review_queueslot", "review_decision", "review_decisionlog",
                      "review_clipreview", "django_session"):
                cur.execute(f"VACUUM (ANALYZE) {t}")
            print(f"autovacuum is off here: vacuumed the review tables "
                  f"({time.perf_counter() - t0:.1f} s)")


# --- phases -------------------------------------------------------------------------------


def _measured_window(server: Server, warmup: float, duration: float, loops: list,
                     announce: bool = False) -> tuple[int, int, dict]:
    """Run each (loop, args) in a thread as loop(t0, stop, *args),
    let them warm up, then measure `duration` seconds: (access-log offsets at the start
    and end of the window, CPU use in it). The threads are stopped and joined."""
    t0 = time.perf_counter()
    stop = threading.Event()
    threads = [threading.Thread(target=loop, args=(t0, stop, *args), daemon=True)
               for loop, args in loops]
    for t in threads:
        t.start()
    time.sleep(warmup)
    if announce:
        print(f"  warm-up done ({warmup:.0f} s); measuring {duration:.0f} s", flush=True)
    watch = CpuWatch(server)
    log_start = server.log_offset()
    time.sleep(duration)
    log_end = server.log_offset()
    cpu = watch.result()
    stop.set()
    for t in threads:
        t.join(timeout=60)
    return log_start, log_end, cpu


def run_paced(clients: list[Reviewer], server: Server, warmup: float, duration: float,
              seed: int) -> tuple[dict[str, list[float]], dict[str, list[float]], dict]:
    log_start, log_end, cpu = _measured_window(
        server, warmup, duration,
        [(paced_loop, (r, random.Random(seed + i))) for i, r in enumerate(clients)],
        announce=True,
    )
    client_ms: dict[str, list[float]] = {k: [] for k in KINDS}
    for r in clients:
        for s in r.samples:
            if warmup <= s.start and s.end <= warmup + duration and s.kind in client_ms:
                client_ms[s.kind].append(s.ms)
        r.samples.clear()
    return client_ms, server_times(server, log_start, log_end), cpu


def run_probe(r: Reviewer, n: int) -> dict[str, list[float]]:
    """One reviewer alone, requests one after another with no pause: the unloaded latency
    (what a request costs when nothing else is queued in the server)."""
    t0 = time.perf_counter()
    r.open_next(t0)
    verdicts = ["accept", "reject", "unsure"]
    for i in range(n):
        r.decide(t0, r.labels[i % len(r.labels)], verdicts[(i // len(r.labels)) % 3],
                 kind="probe-decision")
        if i % 4 == 3:
            r.timed(t0, "probe-page", "GET", f"/clips/{r.clip_id}/")
    out = {"decision": [s.ms for s in r.samples if s.kind == "probe-decision"][5:],
           "page": [s.ms for s in r.samples if s.kind == "probe-page"][2:]}
    r.samples.clear()
    return out


def run_saturated(clients: list[Reviewer], server: Server, warmup: float,
                  duration: float) -> tuple[float, list[float], list[float], dict, int]:
    log_start, log_end, cpu = _measured_window(
        server, warmup, duration, [(saturated_loop, (r,)) for r in clients])
    ok, lat, errors = 0, [], 0
    for r in clients:
        for s in r.samples:
            if warmup <= s.end <= warmup + duration:
                if s.status == 200:
                    ok += 1
                    if s.start >= warmup:
                        lat.append(s.ms)
                else:
                    errors += 1
        r.samples.clear()
    server_ms = server_times(server, log_start, log_end)["decision"]
    return ok / duration, lat, server_ms, cpu, errors


def summary_row(name: str, xs: list[float]) -> str:
    if not xs:
        return f"  {name:<28} {'no samples':>8}"
    return (f"  {name:<28} {len(xs):>6} {pct(xs, 50):>8.1f} {pct(xs, 95):>8.1f} "
            f"{pct(xs, 99):>8.1f} {max(xs):>8.1f}")


# --- diagnosis ----------------------------------------------------------------------------


class WsgiBrowser:
    """A browser calling the WSGI application in this process: the same middleware as
    under gunicorn (sessions, CSRF, auth), without the test Client's instrumentation."""

    def __init__(self, app, cookies: dict[str, str]) -> None:
        self.app, self.cookies, self.csrf = app, dict(cookies), ""

    def request(self, method: str, path: str, form: dict | None = None,
                headers: dict | None = None) -> tuple[int, dict, bytes]:
        import io

        body = urlencode(form).encode() if form is not None else b""
        environ = {
            "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1", "REMOTE_ADDR": "127.0.0.1",
            "HTTP_COOKIE": "; ".join(f"{k}={v}" for k, v in self.cookies.items()),
            "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr, "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http", "wsgi.multithread": True, "wsgi.multiprocess": True,
            "wsgi.run_once": False, "CONTENT_LENGTH": str(len(body)),
        }
        if form is not None:
            environ["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
        for k, v in (headers or {}).items():
            environ["HTTP_" + k.upper().replace("-", "_")] = v
        got: dict = {}

        def start_response(status, hdrs, exc_info=None):
            got["status"], got["headers"] = int(status.split()[0]), hdrs

        result = self.app(environ, start_response)
        try:
            payload = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        for k, v in got["headers"]:
            if k.lower() == "set-cookie":
                name, _, value = v.split(";", 1)[0].partition("=")
                self.cookies[name.strip()] = value.strip()
        token = _CSRF.search(payload)
        if token:
            self.csrf = token.group(1).decode()
        return got["status"], dict(got["headers"]), payload


def new_session(user) -> str:
    """A logged-in session for the user, made in the database (no password needed)."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    s = SessionStore()
    s[SESSION_KEY] = str(user.pk)
    from django.conf import settings
    from django.utils.module_loading import import_string

    # The backend a real login records: the first that can load a user (the lockout
    # backend in front of it only counts failed logins; it has no get_user).
    s[BACKEND_SESSION_KEY] = next(
        path for path in settings.AUTHENTICATION_BACKENDS
        if hasattr(import_string(path), "get_user"))
    s[HASH_SESSION_KEY] = user.get_session_auth_hash()
    s.create()
    return s.session_key


def diagnose(dataset_id: int, reps: int) -> None:
    """Per-request query counts and times, wall and CPU time and a cProfile of each request
    through the WSGI application in this process (against the benchmark database), and
    EXPLAIN ANALYZE of the queue's pick and peek."""
    import cProfile
    import io
    import pstats

    from django.contrib.auth import get_user_model
    from django.core.wsgi import get_wsgi_application
    from django.db import connection
    from django.utils import timezone

    from relabel_app.models import Dataset
    from review.queue import RANK_COLUMNS, queue_pick_sql

    user = get_user_model().objects.get(pk=scale_db.seed_users(REVIEWER_PREFIX, 1)[0])
    ds = Dataset.objects.get(pk=dataset_id)
    b = WsgiBrowser(get_wsgi_application(), {"sessionid": new_session(user)})
    b.request("GET", "/accounts/login/")
    _, h, _ = b.request("POST", f"/datasets/{dataset_id}/start/",
                        form={"csrfmiddlewaretoken": b.csrf})
    state = {"i": 0, "clip": int(_CLIP_URL.match(h["Location"]).group(1)), "labels": []}
    verdicts = ["accept", "reject"]

    def req_page():
        status, _, body = b.request("GET", f"/clips/{state['clip']}/")
        state["labels"] = [int(x) for x in _LABEL_ROW.findall(body)]
        return status

    def req_decide():
        state["i"] += 1
        labels = state["labels"]
        return b.request(
            "POST", f"/clips/{state['clip']}/labels/{labels[state['i'] % len(labels)]}/decide/",
            form={"verdict": verdicts[state["i"] % 2]},
            headers={"HX-Request": "true", "X-CSRFToken": b.csrf})[0]

    def req_next():
        status, h, _ = b.request("POST", f"/clips/{state['clip']}/next/",
                                 form={"csrfmiddlewaretoken": b.csrf})
        state["clip"] = int(_CLIP_URL.match(h["Location"]).group(1))
        return status

    req_page()
    for name, fn, after in (("clip page GET", req_page, None),
                            ("decision POST (htmx)", req_decide, None),
                            ("next clip POST", req_next, req_page)):
        for _ in range(3):  # warm
            fn()
            if after:
                after()
        queries: list[tuple[float, str]] = []

        def timer(execute, sql, params, many, context, queries=queries):
            t0 = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                queries.append(((time.perf_counter() - t0) * 1000, sql))

        with connection.execute_wrapper(timer):
            t0 = time.perf_counter()
            status = fn()
            dt = (time.perf_counter() - t0) * 1000
        if after:
            after()
        print(f"\n== {name}: status {status}, {dt:.1f} ms, {len(queries)} queries taking "
              f"{sum(q[0] for q in queries):.1f} ms at the client (ORM execute to rows; "
              "BEGIN/COMMIT of atomic blocks and the health check are not listed)")
        for ms, sql in queries:
            print(f"   {ms:6.2f} ms  {' '.join(sql.split())[:150]}")
        walls, cpus = [], []
        for _ in range(reps):
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            walls.append((time.perf_counter() - t0) * 1000)
            cpus.append((time.process_time() - c0) * 1000)
            if after:
                after()
        print(f"   {reps} reps: wall p50 {pct(walls, 50):.2f} ms, p95 {pct(walls, 95):.2f} ms;"
              f" CPU of this process p50 {pct(cpus, 50):.2f} ms (load average {loadavg()})")
        # CPU time, not wall time: under contention waits for the database (scheduling
        # delays of its backend included) would swamp where the Python time goes.
        prof = cProfile.Profile(time.process_time)
        for _ in range(reps):
            prof.enable()
            fn()
            prof.disable()
            if after:
                after()
        if os.environ.get("BENCH_PROFILE_DIR"):  # for pstats / snakeviz
            prof.dump_stats(Path(os.environ["BENCH_PROFILE_DIR"]) / f"{name.split()[0]}.pstats")
        for order, n in (("cumulative", 45), ("tottime", 20)):
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats(order).print_stats(n)
            print("\n".join(line for line in out.getvalue().splitlines()[4:] if line.strip()))

    column = RANK_COLUMNS.get(ds.review_priority, "rank_order")
    for lock in (True, False):
        with connection.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + queue_pick_sql(column, lock=lock),
                        {"ds": ds.pk, "me": user.pk, "now": timezone.now(),
                         "exclude": state["clip"]})
            plan = "\n".join(r[0] for r in cur.fetchall())
            cur.execute("ROLLBACK")
        print(f"\n== EXPLAIN ANALYZE queue pick (lock={lock}):\n{plan}")


# --- main ---------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="the 100,000-clip bench_quick")
    # 4 sync workers (2 per core) measured best here: against 3x2, 2x4 and 1x8 gthread and
    # 5x1 sync, the same paced p50 within noise, the lowest p95 and the highest saturated
    # rate. Sync workers close the connection after each answer (no keep-alive) and
    # expect a buffering proxy (nginx) in front of them in production.
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--conn-max-age", type=int, default=600)
    ap.add_argument("--reviewers", type=int, default=20)
    ap.add_argument("--warmup", type=float, default=15)
    ap.add_argument("--duration", type=float, default=75)
    ap.add_argument("--sat-clients", type=int, default=12)
    ap.add_argument("--sat-warmup", type=float, default=3)
    ap.add_argument("--sat-duration", type=float, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--probe", type=int, default=100,
                    help="decisions by one client alone before the paced phase (0: none)")
    ap.add_argument("--wait-quiet", type=float, default=600,
                    help="wait up to this many seconds for other processes to use < 0.25 "
                         "cores before starting (0: do not wait)")
    ap.add_argument("--no-record", action="store_true")
    ap.add_argument("--app-dir", type=Path, default=ROOT,
                    help="serve another checkout of the app (to try a change on a copy; "
                         "nothing is recorded then)")
    ap.add_argument("--diagnose", action="store_true",
                    help="query counts, cProfile and EXPLAIN instead of the load test")
    ap.add_argument("--reps", type=int, default=30, help="--diagnose: profiled requests")
    args = ap.parse_args()

    # SIGTERM ends the run through the finally clauses, so the server does not outlive it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    scale_db.setup_django()
    details = scale_db.build(quick=args.quick)
    dataset_id = details["dataset_id"]
    from django.db import connection

    print(f"machine: {machine()}")
    print(f"dataset: {'bench_quick' if args.quick else 'bench_review'} (id {dataset_id}), "
          f"{details['clips']:,} clips, {details['candidates']:,} candidates, database "
          f"{connection.settings_dict['NAME']}")
    if args.diagnose:
        diagnose(dataset_id, args.reps)
        return
    release_leases(dataset_id)
    if args.wait_quiet > 0:
        t0 = time.perf_counter()
        cores = wait_for_quiet(max_wait_s=args.wait_quiet)
        print(f"other processes used {cores:.2f} cores after waiting "
              f"{time.perf_counter() - t0:.0f} s for a quiet machine; load average {loadavg()}")

    tmp = Path(tempfile.mkdtemp(prefix="bench_review_http_"))
    server = start_server(args.workers, args.threads, args.conn_max_age, tmp,
                          args.app_dir.resolve())
    kind = "gthread" if args.threads > 1 else "sync"
    server_desc = (f"gunicorn {kind}: {args.workers} workers x {args.threads} threads, "
                   f"CONN_MAX_AGE {args.conn_max_age} s, DEBUG off, port {server.port}")
    if args.app_dir.resolve() != ROOT:
        server_desc += f", app from {args.app_dir.resolve()}"
    print(f"server: {server_desc}\n  {' '.join(server.cmd)}")
    try:
        clients = make_clients(args.reviewers, server.port, dataset_id)
        connection.close()  # the load phases use no Django database connection here

        probe = {}
        if args.probe:
            probe = run_probe(clients[0], args.probe)
            print(f"\nunloaded (one client, back to back; load average {loadavg()}):")
            print(f"  {'ms':<28} {'n':>6} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}")
            print(summary_row("decision (client)", probe["decision"]))
            print(summary_row("clip page (client)", probe["page"]))
        print(f"\npaced: {args.reviewers} reviewers, ~1 action/s each; load average "
              f"{loadavg()}", flush=True)
        client_ms, srv_ms, cpu_paced = run_paced(clients, server, args.warmup, args.duration,
                                                 args.seed)
        print_cpu("paced", cpu_paced)
        errors = [e for r in clients for e in r.errors]
        for r in clients:
            r.errors.clear()
        n_req = sum(len(v) for v in client_ms.values())
        per_req = 1000 / max(n_req / args.duration, 1e-9)
        print(f"  CPU per request (mix): gunicorn {cpu_paced['cores_gunicorn'] * per_req:.2f} "
              f"ms, its PostgreSQL backends "
              f"{cpu_paced['cores_postgres_backends'] * per_req:.2f} ms")
        print(f"  {n_req} requests measured ({n_req / args.duration:.1f}/s), "
              f"{len(errors)} errors{': ' + '; '.join(errors[:5]) if errors else ''}, "
              f"{sum(r.http.retries for r in clients)} keep-alive reconnects")
        print(f"\n  {'ms':<28} {'n':>6} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}")
        for k in KINDS:
            print(summary_row(f"{FIGURE[k]} (client)", client_ms[k]))
            print(summary_row(f"{FIGURE[k]} (server)", srv_ms[k]))

        sat_clients = [c for c in clients if c.clip_id and len(c.labels) >= 2]
        sat_clients = sat_clients[: args.sat_clients]
        for c in sat_clients:
            c.http.close()
        print(f"\nsaturated: {len(sat_clients)} unpaced clients posting decisions; load "
              f"average {loadavg()}", flush=True)
        rate, sat_lat, sat_srv, cpu_sat, sat_err = run_saturated(
            sat_clients, server, args.sat_warmup, args.sat_duration)
        print_cpu("saturated", cpu_sat)
        print(f"  decisions_per_s_saturated = {rate:.1f} ({sat_err} non-200 answers); CPU per "
              f"decision: gunicorn {cpu_sat['cores_gunicorn'] / rate * 1000:.2f} ms, its "
              f"PostgreSQL backends {cpu_sat['cores_postgres_backends'] / rate * 1000:.2f} ms")
        print(summary_row("decision, saturated (client)", sat_lat))
        print(summary_row("decision, saturated (server)", sat_srv))
    finally:
        server.stop()

    figures = {
        "clip_page_p50_ms": (pct(client_ms["page"], 50), "ms"),
        "clip_page_p95_ms": (pct(client_ms["page"], 95), "ms"),
        "decision_p50_ms": (pct(client_ms["decision"], 50), "ms"),
        "decision_p95_ms": (pct(client_ms["decision"], 95), "ms"),
        "next_clip_p95_ms": (pct(client_ms["next"], 95), "ms"),
        "decisions_per_s_saturated": (rate, "decisions/s"),
    }
    print("\nfigure                       value   target")
    for name, (value, unit) in figures.items():
        target = TARGETS.get(name)
        verdict = "" if target is None else ("ok" if value <= target else "MISSED")
        print(f"  {name:<26} {value:8.1f} {unit:<12} "
              f"{'<= ' + str(target) if target else '':<8} {verdict}")
    extra = {
        "review_http": {
            "dataset": f"{details['clips']} clips, {details['candidates']} candidates",
            "server": server_desc,
            "paced": f"{args.reviewers} reviewers, ~1 action/s, {args.duration:.0f} s after "
                     f"{args.warmup:.0f} s warm-up; client-side times",
            "saturated": f"{len(sat_clients)} unpaced clients, {args.sat_duration:.0f} s",
            "samples": {k: len(v) for k, v in client_ms.items()},
            "server_side_ms": {
                k: {"p50": round(pct(v, 50), 2), "p95": round(pct(v, 95), 2)}
                for k, v in srv_ms.items() if v
            },
            "unloaded_one_client_ms": {
                k: {"p50": round(pct(v, 50), 2), "p95": round(pct(v, 95), 2)}
                for k, v in probe.items() if v
            },
            "cpu_paced": cpu_paced, "cpu_saturated": cpu_sat,
            "errors": len(errors) + sat_err,
        }
    }
    if args.quick or args.no_record or args.app_dir.resolve() != ROOT:
        print("\n(not recorded: --quick or --no-record)")
        print(json.dumps(extra, indent=1))
    else:
        record(figures, extra=extra)
        print(f"\nrecorded in {Path('bench/results.json')}")


if __name__ == "__main__":
    main()
