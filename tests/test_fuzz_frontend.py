"""Mutation fuzzing of the front end: random edits of the specs in specs/*.net, fed to
`netspec check`. Every run must end with exit 0, or exit 1 and errors that each name a place
in a file (`--> file:line:col`, on the line after `error:`, the line within that file: 1 to
its number of line breaks + 1, counting CRLF, CR and LF); never a traceback, an internal error
(exit 3), a RecursionError, a crash of the interpreter, an unlocated error or a hang (a case
has NETSPEC_FUZZ_TIMEOUT seconds, default 10). Every 10th case is also checked with --json
(each error diagnostic has file, line and column, and `ok` agrees with the exit code).

The edits (tests/fuzz_mutations.py), one to three a case: deleted, duplicated, swapped,
replaced and inserted tokens; huge numbers (10**30, 2**63, 2**64, 99999999999999999999, 300
and 4,400 digits, 1e309, 4.9e-324 ...); deep nesting (parentheses, brackets, braces, unary
minus and `not` up to 20,000 deep; calls, tuples, conditionals, sums, chains, repeats and
labelled repeats up to 3,000 deep; blocks calling one another up to 2,000 deep); repeated,
swapped and deleted lines (a line up to 3,000 times); `use` of a sibling spec, of itself, of
missing files, directories and odd paths; truncation at a random byte; random bytes and odd
characters (NUL, form feed, U+2028, BOM, lookalike arrows ...) inserted; bytes that are not
UTF-8; flipped bits. Each spec with blocks is also fuzzed split in two, its blocks moved to
`lib.net` behind a `use`, so errors located in an imported file are covered too. Mutants are
written next to copies of all the specs and of specs/lib/ (in tmp_path), so relative imports
resolve as they would beside the originals.

Cases run through netspec.cli.main in worker processes (one per CPU, at most 4) forked from a
multiprocessing forkserver, a fresh single-threaded interpreter, never from the pytest process
(see _Pool), with NETSPEC_DEBUG=1 so a bug surfaces with its traceback; a worker that dies (a
C stack overflow is a SIGSEGV) is reported with faulthandler's Python stack and replaced. A
handful of cases also run as `python -m netspec check` subprocesses, to prove the process-level behaviour
(exit codes, no traceback on stderr). Everything is seeded: a case is named `<base>:<index>`
and reproduced from that alone.

    python -m pytest tests/test_fuzz_frontend.py -q                 # 1,000 mutants, ~20-30 s on 2 CPUs
    NETSPEC_FUZZ=nightly python -m pytest tests/test_fuzz_frontend.py -q -rA   # 50,000 mutants
    NETSPEC_FUZZ_CASES=5000     # any count
    NETSPEC_FUZZ_SEED=7         # another series of cases (default 0)
    NETSPEC_FUZZ_ONLY=fpn+lib:123,lenet5:9 ... -s   # just these cases, each printed
    NETSPEC_FUZZ_TIMEOUT=10     # seconds a case may take before it counts as a hang
    NETSPEC_FUZZ_STRICT=1       # fail, rather than xfail, on cases that hit a known bug

The summary line (cases, edits per kind, seconds, failures) is printed (see it with -s, or in
the xfail/failure report); the case count is also the junit property `fuzz_cases`
(--junitxml). Bugs found so far are in KNOWN_BUGS with minimal reproductions, run by
test_known_bugs as strict xfails. While any stands, a random case that hits one of them is no
new finding: if every failing case is a known bug the random test xfails (listing the cases),
any other failure fails it; once the bugs are fixed it passes.
"""

from __future__ import annotations

import collections
import contextlib
import io
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest

from bundled_specs import EXAMPLES, LIBRARIES

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fuzz_mutations as fm  # noqa: E402

from netspec.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SPECS = EXAMPLES  # the fourteen examples (tests/bundled_specs.py) are the bases the mutations start from

DEFAULT_CASES = 1000
NIGHTLY_CASES = 50_000
SEED = int(os.environ.get("NETSPEC_FUZZ_SEED", "0"))
TIMEOUT = float(os.environ.get("NETSPEC_FUZZ_TIMEOUT", "10"))
JSON_EVERY = 10  # every 10th case is also checked with --json
MAIN = "mutant.net"


def case_count() -> int:
    if os.environ.get("NETSPEC_FUZZ_CASES"):
        return int(os.environ["NETSPEC_FUZZ_CASES"])
    return NIGHTLY_CASES if os.environ.get("NETSPEC_FUZZ") == "nightly" else DEFAULT_CASES


# ---------------------------------------------------------------- the specs to mutate

@dataclass(frozen=True)
class Base:
    name: str                    # `fpn`, or `fpn+lib` for the split form
    files: dict[str, bytes]      # file name -> contents; MAIN is the one checked


def bases() -> list[Base]:
    out = []
    for spec in SPECS:
        text = spec.read_text(encoding="utf-8")
        out.append(Base(spec.stem, {MAIN: text.encode()}))
        split = fm.split_blocks(text)
        if split is not None:
            out.append(Base(spec.stem + "+lib", {MAIN: split[0].encode(), "lib.net": split[1].encode()}))
    return out


BASES = bases()
BY_NAME = {b.name: b for b in BASES}
SIBLINGS = tuple(s.name for s in SPECS)


def make_case(base: Base, index: int) -> tuple[dict[str, bytes], list[str]]:
    rng = random.Random(f"{SEED}:{base.name}:{index}")
    return fm.mutate(base.files, MAIN, rng, SIBLINGS)


def all_cases(count: int) -> list[tuple[Base, int]]:
    """`count` cases, round-robin over the bases."""
    return [(BASES[k % len(BASES)], k // len(BASES)) for k in range(count)]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A directory with copies of every spec and of the libraries they `use` (specs/lib/); a case
    writes its files beside them."""
    directory = tmp_path_factory.mktemp("fuzz") / "specs"
    directory.mkdir()
    for spec in SPECS:
        (directory / spec.name).write_bytes(spec.read_bytes())
    # the libraries the examples `use` (specs/lib/densenet.net ...), at the same relative path
    for library in LIBRARIES.rglob("*.net"):
        target = directory / "lib" / library.relative_to(LIBRARIES)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(library.read_bytes())
    return directory


def write_case(directory: Path, files: dict[str, bytes]) -> Path:
    for name in (MAIN, "lib.net"):  # nothing from the previous case may leak into this one
        (directory / name).unlink(missing_ok=True)
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return directory / MAIN


# ---------------------------------------------------------------- running one case

class CaseTimeout(BaseException):
    """Raised by the alarm; a BaseException so that no `except Exception` in netspec eats it."""


def _alarm(signum, frame):
    raise CaseTimeout()


@dataclass
class Outcome:
    code: int | str | None
    out: str
    err: str
    crash: str | None = None     # a traceback, a hang: what escaped main()


def check_in_process(path: Path, *extra: str, alarm: bool = True) -> Outcome:
    """`netspec check PATH` through netspec.cli.main in this process, with a time limit: an
    alarm that raises CaseTimeout in the main thread (`alarm`; it cannot stop work that runs
    in another thread, where compile_file may put it), or the worker's watchdog."""
    out, err = io.StringIO(), io.StringIO()
    limit = sys.getrecursionlimit()
    old_env = os.environ.get("NETSPEC_DEBUG")
    os.environ["NETSPEC_DEBUG"] = "1"
    previous = signal.signal(signal.SIGALRM, _alarm)
    if alarm:
        signal.setitimer(signal.ITIMER_REAL, TIMEOUT)
    code, crash = None, None
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(["check", str(path), *extra])
            except SystemExit as exc:
                code = exc.code
    except CaseTimeout:  # where it was is the best clue to why
        crash = f"hang: no result after {TIMEOUT:g} s; it was at\n" + traceback.format_exc(limit=-40)
    except BaseException:  # noqa: BLE001 - whatever escapes is the finding
        crash = traceback.format_exc(limit=-12)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        sys.setrecursionlimit(limit)  # main() raises it for the process; each case starts afresh
        if old_env is None:
            os.environ.pop("NETSPEC_DEBUG", None)
        else:
            os.environ["NETSPEC_DEBUG"] = old_env
    return Outcome(code, out.getvalue(), err.getvalue(), crash)


_LOCATION = re.compile(r"  --> (?P<file>.+):(?P<line>-?\d+):(?P<column>-?\d+)$")


def _line_count(directory: Path, file: str, counted: dict) -> int | None:
    """How many lines netspec can see in `file` (line breaks + 1; CRLF, CR and LF each end a
    line), None for a file that is not part of the case. `counted` remembers the files of one
    outcome: thousands of errors may point into the same one."""
    if file not in counted:
        counted[file] = _count_lines(directory, file)
    return counted[file]


def _count_lines(directory: Path, file: str) -> int | None:
    path = Path(file)
    if not path.is_absolute():
        path = Path.cwd() / path
    try:
        path = path.resolve()
    except (OSError, ValueError):
        return None
    if path.parent != directory.resolve() or not path.is_file():
        return None
    return len(re.findall(rb"\r\n|\r|\n", path.read_bytes())) + 1


def _check_location(directory: Path, file: str, line: int, column: int, counted: dict) -> str | None:
    lines = _line_count(directory, file, counted)
    if lines is None:
        return f"located in a file that is not part of the case: {file!r}"
    if not 1 <= line <= lines:
        return f"line {line} is outside {Path(file).name} (lines 1 to {lines})"
    if column < 1:
        return f"column {column} is not a column"
    return None


def problems(outcome: Outcome, directory: Path) -> list[str]:
    """What is wrong with the outcome of `netspec check` on a case (text output)."""
    if outcome.crash:
        return [outcome.crash]
    found = []
    if outcome.code not in (0, 1):
        found.append(f"exit {outcome.code!r} (expected 0 or 1){_signal_suffix(outcome.code)}; "
                     f"stderr ends: {outcome.err[-1500:]!r}")
    for stream in (outcome.out, outcome.err):
        if "Traceback (most recent call last)" in stream or "internal error" in stream:
            found.append(f"traceback or internal error in the output: ...{stream[-2500:]}")
    lines = outcome.err.split("\n")
    errors = 0
    counted: dict = {}
    for k, line in enumerate(lines):
        if not line.startswith(("error:", "warning:")):
            continue
        errors += line.startswith("error:")
        # the location is the next line, unless a line break inside the message pushed it down
        end = next((j for j in range(k + 1, len(lines)) if _LOCATION.match(lines[j]) or not lines[j]
                    or lines[j].startswith(("error:", "warning:", "  = "))), len(lines))
        where = _LOCATION.match(lines[end]) if end < len(lines) else None
        if where is None:
            if line.startswith("error:"):
                found.append(f"unlocated error: {line[:200]!r}")
            continue
        if end != k + 1:
            found.append(f"error message broken over {end - k} lines: {chr(10).join(lines[k:end])[:200]!r}")
        bad = _check_location(directory, where["file"], int(where["line"]), int(where["column"]),
                              counted)
        if bad:
            found.append(f"{bad}: {line[:160]!r}")
    if outcome.code == 1 and errors == 0:
        found.append("exit 1 without an `error:`")
    if outcome.code == 0 and errors:
        found.append("exit 0 with an `error:`")
    if outcome.code == 0 and not outcome.out.startswith("network "):
        found.append("exit 0 without a table")
    return found


def json_problems(outcome: Outcome, directory: Path) -> list[str]:
    """The same checks on `--json` output: every error diagnostic has a file, line and column."""
    if outcome.crash:
        return [outcome.crash]
    if outcome.code not in (0, 1):
        return [f"--json: exit {outcome.code!r}"]
    try:
        report = json.loads(outcome.out)
    except ValueError as exc:
        return [f"--json: stdout is not JSON ({exc})"]
    found = []
    counted: dict = {}
    if report.get("ok") != (outcome.code == 0):
        found.append(f"--json: ok={report.get('ok')!r} with exit {outcome.code}")
    for d in report.get("diagnostics", []):
        if d.get("severity") != "error":
            continue
        if not all(isinstance(d.get(k), int) for k in ("line", "column")) or not d.get("file"):
            found.append(f"--json: unlocated error {d.get('message', '')[:160]!r}")
            continue
        bad = _check_location(directory, d["file"], d["line"], d["column"], counted)
        if bad:
            found.append(f"--json: {bad}: {d.get('message', '')[:160]!r}")
    return found


def run_case(directory: Path, files: dict[str, bytes], with_json: bool,
             alarm: bool = True) -> tuple[list[str], str]:
    """The problems of one case, and how it ended: `ok`, `syntax` (exit 1, syntax errors only),
    `file` (exit 1, unreadable or not UTF-8), `spec` (exit 1, other errors) or `bad`."""
    path = write_case(directory, files)
    outcome = check_in_process(path, alarm=alarm)
    found = problems(outcome, directory)
    if with_json and not found:
        found = json_problems(check_in_process(path, "--json", alarm=alarm), directory)
    return found, _ending(outcome, found)


def _ending(outcome: Outcome, found: list[str]) -> str:
    if found:
        return "bad"
    if outcome.code == 0:
        return "ok"
    rules = re.findall(r"^  = rule: (.*)$", outcome.err, re.M)
    if "is not UTF-8" in outcome.err or "cannot read" in outcome.err:
        return "file"
    return "syntax" if rules and all(r == "syntax" for r in rules) else "spec"


# ---------------------------------------------------------------- known bugs

@dataclass(frozen=True)
class Bug:
    """A bug the fuzzer found: a minimal reproduction (MAIN's bytes), where the fault is
    suspected, and how to recognise a random case that hits it (a regular expression searched
    in the case's problems and edits; while the bug is open, such cases do not fail the random
    test). A new bug goes in with open=True (a strict xfail); once it is fixed, open=True goes:
    test_known_bugs keeps the reproduction as a regression test and the random test no longer
    excuses it. All nine found so far are fixed."""

    id: str
    reason: str
    spec: bytes
    recognise: str
    timeout: float = 60.0
    open: bool = False  # True while the bug stands (a strict xfail); False once fixed


_HEAD = b"network n\ninput x: f32[N, 3, 8, 8]\n"

KNOWN_BUGS = [
    Bug("int-literal-over-4300-digits",
        "bug: an integer literal of 4,301+ digits is an internal error (exit 3): int() in "
        "netspec/parser.py _AstBuilder.int hits Python's int max-str-digits limit (ValueError, "
        "wrapped in lark's VisitError)",
        b"network n\ninput x: f32[N, " + b"1" * 4301 + b"]\noutput x\n",
        r"Exceeds the limit \(4300 digits\)"),
    Bug("use-path-with-nul",
        "bug: a NUL character in a `use` path is an internal error (exit 3): Path.resolve() "
        "raises ValueError('embedded null byte') in netspec/elaborate.py Elaborator._import "
        "(read_source catches OSError only, too)",
        b'use "\x00"\n',
        r"ValueError: embedded null byte"),
    Bug("repeat-count-huge-hangs",
        "bug: repeat(2147483648) { relu } hangs (it runs 2**31 rounds; still going after 10 s, "
        "75 MB): no upper bound on the count in netspec/elaborate.py Elaborator._repeat",
        _HEAD + b"y = x -> repeat(2147483648) { relu }\noutput y\n",
        r"^hang: [\s\S]* in _repeat\n[\s\S]*huge-number", timeout=8.0),
    Bug("nested-repeats-segfault",
        "bug: 20,000 nested repeat(1) { ... } crash the interpreter (SIGSEGV, C stack "
        "overflow): netspec/elaborate.py _stage_layers recurses through sum(<genexpr>), which "
        "uses the C stack, under compile_file's 100,000 recursion limit",
        _HEAD + b"y = x -> " + b"repeat(1) { " * 20000 + b"relu" + b" }" * 20000 + b"\noutput y\n",
        r"(died|SIGSEGV)[\s\S]*_stage_layers"),
    Bug("nested-tuples-segfault",
        "bug: a tuple nested 20,000 deep crashes the interpreter (SIGSEGV, C stack overflow): "
        "netspec/elaborate.py Elaborator.expr evaluates TupleExpr items with "
        "tuple(<genexpr>) -> scalar -> expr, which uses the C stack",
        _HEAD + b"k = " + b"(" * 20000 + b"1" + b", 1)" * 20000 + b"\ny = x -> relu\noutput y\n",
        r"(died|SIGSEGV|^hang)[\s\S]*in scalar"),
    Bug("params-over-1e308-overflow-in-report",
        "bug: a network with more than ~1.8e308 parameters is an internal error: "
        "OverflowError (int too large to convert to float) in netspec/report.py human()",
        b"network n\ninput x: f32[N, 1" + b"0" * 200 + b"]\ny = x -> linear(1" + b"0" * 200
        + b")\noutput y\n",
        r"OverflowError[\s\S]*(in human|report\.py)|report\.py[\s\S]*OverflowError"),
    Bug("fan-in-over-1e308-overflow",
        "bug: a convolution whose fan-in exceeds ~1.8e308 is an internal error: OverflowError "
        "(int too large to convert to float) from fan_in ** -0.5 in netspec/layers/base.py "
        "fan_in_uniform",
        b"network n\ninput x: f32[N, 1" + b"0" * 310 + b", 8, 8]\ny = x -> conv(1, 1)\noutput y\n",
        r"fan_in_uniform"),
    Bug("make-divisible-of-infinity",
        "bug: make_divisible(1e309, 8) is an internal error: int(inf) raises OverflowError in "
        "netspec/functions.py make_divisible (called from elaborate.py Elaborator._function, "
        "which does not turn function errors into diagnostics)",
        _HEAD + b"c = make_divisible(1e309, 8)\ny = x -> conv(c, 1)\noutput y\n",
        r"make_divisible"),
    Bug("upsample-scale-overflow",
        "bug: upsample(1e308) on an 8x8 map is an internal error: math.floor(inf) raises "
        "OverflowError in netspec/layers/resample.py Upsample.infer",
        _HEAD + b"y = x -> upsample(1e308)\noutput y\n",
        r"OverflowError[\s\S]*resample\.py|resample\.py[\s\S]*OverflowError"),
]


def known_bug(found: list[str], edits: list[str] = ()) -> Bug | None:
    """The known bug that a case's problems (and the edits that made it) point to."""
    text = "\n".join([*found, *edits])
    for bug in KNOWN_BUGS:
        if bug.open and re.search(bug.recognise, text, re.M):
            return bug
    return None


def check_subprocess(path: Path, *extra: str, timeout: float = 60.0, debug: bool = False) -> Outcome:
    """`python -m netspec check PATH` as a real process: what a user sees, or with
    NETSPEC_DEBUG=1 (`debug`) the traceback of an internal error."""
    env = {k: v for k, v in os.environ.items() if k != "NETSPEC_DEBUG"}
    if debug:
        env["NETSPEC_DEBUG"] = "1"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["NO_COLOR"] = "1"
    try:
        proc = subprocess.run([sys.executable, "-X", "faulthandler", "-m", "netspec", "check", str(path),
                               *extra], capture_output=True, text=True, errors="replace",
                              timeout=timeout, env=env, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return Outcome(None, "", "", f"hang: no result after {timeout:g} s")
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def _describe(files: dict[str, bytes], limit: int = 300) -> str:
    return "; ".join(f"{n}={d[:limit]!r}{'...' if len(d) > limit else ''}" for n, d in files.items())


# ---------------------------------------------------------------- the tests

def test_bases_check_clean(workdir):
    """The unmutated specs, whole and split, pass; otherwise the fuzzer starts from errors."""
    for base in BASES:
        path = write_case(workdir, base.files)
        outcome = check_in_process(path)
        assert outcome.code == 0 and not problems(outcome, workdir), (base.name, outcome.err[:2000])


def test_mutations_are_seeded_and_varied():
    base = BY_NAME["fpn+lib"]
    assert [make_case(base, k) for k in range(20)] == [make_case(base, k) for k in range(20)]
    assert len({repr(make_case(base, k)[0]) for k in range(20)}) > 15
    # the default run applies every kind of edit, to a main file and to an imported one
    edits = [what for b, k in all_cases(DEFAULT_CASES // 2) for what in make_case(b, k)[1]]
    assert {what.split(": ", 1)[1].split(" ", 1)[0] for what in edits} == set(fm.KINDS)
    assert any(what.startswith("lib.net: ") for what in edits)


def _selected() -> list[tuple[Base, int]]:
    only = os.environ.get("NETSPEC_FUZZ_ONLY")
    if only:
        picked = []
        for item in only.split(","):
            name, index = item.strip().rsplit(":", 1)
            picked.append((BY_NAME[name], int(index)))
        return picked
    return all_cases(case_count())


# ---------------------------------------------------------------- worker processes

# A case can crash the interpreter (a C stack overflow is a segmentation fault), which would
# take pytest down with it. So cases run in worker processes, each calling main() in process;
# the parent notes how a worker died (and the Python stack faulthandler wrote) and starts
# another. With two or more CPUs the workers also share the load.
#
# The workers are forked from a forkserver, not from the pytest process. A fork of the pytest
# process inherits its whole heap with only the forking thread, and after test_differential
# (same session, as the nightly command runs it) that heap holds garbage cycles (tracebacks
# that hypothesis and pytest keep, frames, a Network whose cached onnxruntime session owns a
# thread pool) that the parent's collector had not reached yet. A worker's garbage collection
# then freed them, and the session's destructor waited in pthread_cond_destroy for pool
# threads that do not exist in the fork (a hang) or called pthread_join on the descriptor of
# such a thread (a SIGSEGV): 482 of 50,000 nightly mutants, at whatever case happened to be
# running, each fine alone. The forkserver is a fresh interpreter with
# this module preloaded and no thread but its own, so a worker starts clean, as it would alone.

def _worker(conn, directory: Path, crash_log: Path) -> None:
    """Runs the cases it is sent. A case gets TIMEOUT seconds (twice that with --json), timed
    by faulthandler's watchdog thread, which needs neither the GIL nor the main thread: at the
    limit it writes every thread's Python stack to the log and ends the process."""
    import faulthandler
    import gc

    log = open(crash_log, "w")  # noqa: SIM115 - open until the process ends
    faulthandler.enable(log)
    while True:
        job = conn.recv()
        if job is None:
            break
        if job == "inherited":  # for test_workers_start_clean: what this process carries over
            carried = sorted(m for m in ("torch", "onnxruntime", "hypothesis") if m in sys.modules)
            conn.send({"collected": gc.collect(), "modules": carried})
            continue
        name, index, with_json = job
        log.seek(0)
        log.truncate()
        files, _ = make_case(BY_NAME[name], index)
        faulthandler.dump_traceback_later(TIMEOUT * (2 if with_json else 1), exit=True, file=log)
        try:
            result = run_case(directory, files, with_json, alarm=False)
        except Exception:  # noqa: BLE001 - a fault of this harness, not a finding about netspec
            result = ([f"harness error: {traceback.format_exc(limit=-8)}"], "bad")
        finally:
            faulthandler.cancel_dump_traceback_later()
        conn.send(result)


class _Pool:
    def __init__(self, directory: Path, size: int):
        import multiprocessing

        # Not "fork": see above. The forkserver imports this module once (and netspec with
        # it), so starting or replacing a worker stays a cheap fork of a clean process.
        self.ctx = multiprocessing.get_context("forkserver")
        self.ctx.set_forkserver_preload([__name__])
        self.directory = directory
        self.workers = [self._start(k) for k in range(size)]

    def _start(self, k: int) -> dict:
        folder = self.directory / f"w{k}"
        if not folder.exists():
            folder.mkdir()
            for spec in SPECS:
                (folder / spec.name).write_bytes(spec.read_bytes())
        ours, theirs = self.ctx.Pipe()
        log = folder / "crash.log"
        process = self.ctx.Process(target=_worker, args=(theirs, folder, log), daemon=True)
        process.start()
        theirs.close()
        return {"k": k, "process": process, "conn": ours, "job": None, "since": 0.0, "log": log}

    def run(self, jobs: list, done) -> None:
        """Runs every job; calls done(job, (problems, ending)) as results come in."""
        from multiprocessing.connection import wait

        pending = list(reversed(jobs))
        while pending or any(w["job"] for w in self.workers):
            for w in self.workers:
                if w["job"] is None and pending:
                    w["job"], w["since"] = pending.pop(), time.monotonic()
                    w["conn"].send(w["job"])
            busy = {w["conn"]: w for w in self.workers if w["job"]}
            for conn in wait(list(busy), timeout=1.0):
                w = busy[conn]
                try:
                    result = conn.recv()
                except (EOFError, OSError):
                    w["process"].join(5)
                    code = w["process"].exitcode
                    stack = w["log"].read_text(errors="replace") if w["log"].exists() else ""
                    if stack.startswith("Timeout ("):  # the watchdog: a hang, and where it was
                        what = f"hang: no result after {TIMEOUT:g} s; the threads were at\n"
                    else:
                        what = f"the process died (exit {code}, {_signal_name(code)})\n"
                    self._replace(w, done, ([what + _shorten(stack, 40)], "bad"))
                    continue
                job, w["job"] = w["job"], None
                done(job, result)
            for w in self.workers:  # stuck outside Python code, where the alarm cannot fire
                if w["job"] and time.monotonic() - w["since"] > 3 * TIMEOUT + 30:  # no watchdog?
                    w["process"].kill()
                    w["process"].join()
                    self._replace(w, done, ([f"hang: killed after {3 * TIMEOUT + 30:g} s"], "bad"))

    def _replace(self, w: dict, done, result: tuple[list[str], str]) -> None:
        job = w["job"]
        w["conn"].close()
        self.workers[self.workers.index(w)] = self._start(w["k"])
        done(job, result)

    def inherited(self) -> list[dict]:
        """Each worker's answer to "inherited" (a full garbage collection there, and which of
        torch, onnxruntime and hypothesis it has loaded), or how it failed to answer."""
        answers = []
        for w in self.workers:
            w["conn"].send("inherited")
        for w in self.workers:
            try:
                answers.append(w["conn"].recv() if w["conn"].poll(3 * TIMEOUT) else
                               f"no answer after {3 * TIMEOUT:g} s")
            except (EOFError, OSError):
                w["process"].join(5)
                answers.append(f"the process died (exit {w['process'].exitcode}, "
                               f"{_signal_name(w['process'].exitcode)})")
        return answers

    def close(self) -> None:
        for w in self.workers:
            with contextlib.suppress(OSError):
                w["conn"].send(None)
        for w in self.workers:
            w["process"].join(10)
            if w["process"].is_alive():
                w["process"].kill()


def signature(found: list[str]) -> str:
    """One line that tells failures apart: the first exception of a traceback and the innermost
    netspec frame above it, else the first problem with its quoted text cut off."""
    first = found[0]
    if "Traceback (most recent call last)" in first:
        frame = ""
        for line in first[first.index("Traceback (most recent call last)"):].split("\n"):
            m = re.search(r'netspec/([\w/]+\.py)", line (\d+), in ([\w<>]+)', line)
            if m:
                frame = f" at {m[1]}:{m[2]} {m[3]}()"
            elif re.match(r"[\w.]+(: |$)", line) and not line.startswith(("Traceback", "During", "The ")):
                return f"{line.strip()[:90]}{frame}"
        return first.split("\n")[0][:90]
    if first.startswith("the process died"):
        stack = [line for line in first.split("\n") if "/netspec/" in line]
        m = re.search(r'netspec/([\w/]+\.py)", line (\d+) in ([\w<>]+)', stack[0]) if stack else None
        return first.split("\n")[0] + (f" in {m[1]}:{m[2]} {m[3]}()" if m else "")
    return re.sub(r"[`'].*", "", first.split("\n")[0])[:90].strip()


def _signal_suffix(code) -> str:
    return f", killed by {_signal_name(code)}" if isinstance(code, int) and code < 0 else ""


def _signal_name(code) -> str:
    if isinstance(code, int) and code < 0:
        with contextlib.suppress(ValueError):
            return signal.Signals(-code).name
    return "no signal"


def _shorten(stack: str, keep: int = 12) -> str:
    """A faulthandler dump with its repeated middle left out."""
    lines = stack.rstrip().split("\n")
    if len(lines) <= 2 * keep:
        return "\n".join(lines)
    return "\n".join(lines[:keep] + [f"  ... {len(lines) - 2 * keep} more lines ..."] + lines[-keep:])


def _workers() -> int:
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return 0
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(4, cpus))


@pytest.mark.skipif(not _workers() or not os.path.isdir("/proc/self/task"),
                    reason="needs a forkserver and /proc (Linux)")
def test_workers_start_clean(workdir):
    """Regression: the workers were forks of this process and freed its garbage. Here it holds
    what test_differential leaves behind: a Network whose cached onnxruntime session runs a
    thread pool, in a reference cycle the collector has not reached. (A fork of it hung in
    pthread_cond_destroy or died of SIGSEGV in pthread_join when its collector freed that
    session: 482 of the 50,000 nightly mutants.) A full collection in each worker must be
    harmless, the workers must not carry onnxruntime or torch at all, and cases must run."""
    import gc

    import numpy as np

    from netspec.api import Network
    from netspec.compiler import compile_file

    net = Network(compile_file("held.net", text="network held\ninput x: f32[N, 2, 8, 8]\n"
                               "y = x -> conv(4, 3) -> relu\noutput y\n"))
    net.run(np.zeros((2, 2, 8, 8), np.float32))  # builds and caches the session: its pool starts
    assert len(os.listdir("/proc/self/task")) > 1  # its threads run beside this one
    gc.disable()  # the cycle stays uncollected here until the workers have started
    try:
        cycle: list = [net]
        cycle.append(cycle)
        del net, cycle
        pool = _Pool(workdir, 2)
        try:
            answers = pool.inherited()
            results = []
            pool.run([(b.name, 0, True) for b in BASES[:4]], lambda job, result: results.append(result))
        finally:
            pool.close()
    finally:
        gc.enable()
        gc.collect()
    assert all(isinstance(a, dict) for a in answers), answers
    assert [a["modules"] for a in answers] == [[], []], answers
    assert len(results) == 4 and all(not found for found, _ in results), results


def test_mutants_end_in_a_result_or_a_located_error(workdir, record_property):
    cases = _selected()
    verbose = bool(os.environ.get("NETSPEC_FUZZ_ONLY"))
    kinds: collections.Counter = collections.Counter()
    failures = []
    jobs = [(base.name, index, k % JSON_EVERY == 0) for k, (base, index) in enumerate(cases)]

    endings: collections.Counter = collections.Counter()

    def done(job, result):
        found, ending = result
        endings[ending] += 1
        name, index, _ = job
        files, edits = make_case(BY_NAME[name], index)
        for what in edits:
            kinds[what.split(": ", 1)[1].split(" ", 1)[0]] += 1
        if verbose:
            print(f"\n{name}:{index}: {edits} -> {found or 'ok'}")
        if found:
            failures.append((f"{name}:{index}", edits, found, files))

    start = time.perf_counter()
    size = _workers()
    if size:
        pool = _Pool(workdir, size)
        try:
            pool.run(jobs, done)
        finally:
            pool.close()
    else:  # no fork: in this process (a crash ends the run)
        for job in jobs:
            files, _ = make_case(BY_NAME[job[0]], job[1])
            done(job, run_case(workdir, files, job[2]))
    elapsed = time.perf_counter() - start
    failures.sort(key=lambda f: (f[0].rsplit(":", 1)[0], int(f[0].rsplit(":", 1)[1])))
    record_property("fuzz_cases", len(cases))
    known = [f for f in failures if known_bug(f[2], f[1])]
    summary = (f"fuzz: {len(cases)} mutants of {len(BASES)} bases (seed {SEED}, {size or 1} "
               f"process{'es' if size > 1 else ''}) in {elapsed:.1f} s, {len(failures)} failing "
               f"({len(known)} on known bugs); endings: "
               + ", ".join(f"{kind} {n}" for kind, n in sorted(endings.items())) + "; edits: "
               + ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items())))
    print("\n" + summary)
    if not failures:
        return
    by_kind = collections.defaultdict(list)
    for name, edits, found, _ in failures:
        bug = known_bug(found, edits)
        by_kind[f"known bug {bug.id}" if bug else signature(found)].append(name)
    table = "\n".join(f"  {len(names)} x {sig}\n      {', '.join(names)}" for sig, names in
                      sorted(by_kind.items(), key=lambda item: (item[0].startswith("known"), -len(item[1]))))
    new = [f for f in failures if not known_bug(f[2], f[1])]
    shown = []
    for name, edits, found, files in (new or failures)[:15]:
        shown.append(f"--- case {name}: {edits}\n" + "\n".join(found)[:3000]
                     + f"\n    files: {_describe(files, 200)}")
    report = (f"{summary}\nfailures by kind:\n{table}\n"
              "reproduce one with NETSPEC_FUZZ_ONLY=<case>; the first 15:\n" + "\n".join(shown))
    if new or os.environ.get("NETSPEC_FUZZ_STRICT"):
        pytest.fail(report, pytrace=False)
    # Every failing case is one of the known bugs (test_known_bugs has their reproductions):
    # not a new finding. Once they are fixed no case fails and this test passes.
    pytest.xfail(report)


# A few cases as real processes: the exit code and stderr of `python -m netspec check`.
SUBPROCESS_CASES = [("lenet5", 0), ("fpn+lib", 1), ("unet+lib", 3), ("alexnet", 4)]
HANDMADE = {
    "not-utf8": b"network n\ninput x: f32[N, 3, 8, 8]\ny = x -> relu # caf\xe9\noutput y\n",
    "deep-parens": _HEAD + b"y = " + b"(" * 3000 + b"x" + b")" * 3000 + b" -> relu\noutput y\n",
    "open-brackets": b"network n\ninput x: f32[N, " + b"[" * 5000 + b"\n",
    "huge": f"network n\ninput x: f32[N, {2 ** 63}]\ny = x -> linear({10 ** 30})\noutput y\n".encode(),
    "truncated": b"network n\ninput x: f32[N, 3, 8",
    "nested-blocks": ("network n\ninput x: f32[N, 3, 8, 8]\nblock b0(t) {\n    return t -> relu\n}\n"
                      + "".join(f"block b{k}(t) {{\n    return t -> b{k - 1}\n}}\n" for k in range(1, 1500))
                      + "y = x -> b1499\noutput y\n").encode(),
}


def _subprocess_cases():
    for name, index in SUBPROCESS_CASES:
        yield pytest.param(lambda b=BY_NAME[name], i=index: make_case(b, i)[0], id=f"{name}:{index}")
    for name, data in HANDMADE.items():
        yield pytest.param(lambda d=data: {MAIN: d}, id=name)


@pytest.mark.parametrize("make", list(_subprocess_cases()))
def test_subprocess(workdir, make):
    path = write_case(workdir, make())
    outcome = check_subprocess(path)
    assert not problems(outcome, workdir), (outcome.code, outcome.err[-3000:])
    assert check_in_process(path).code == outcome.code  # the same verdict in process


@pytest.mark.parametrize("bug", [
    pytest.param(b, id=b.id, marks=[pytest.mark.xfail(strict=True, reason=b.reason)] if b.open else [])
    for b in KNOWN_BUGS])
def test_known_bugs(workdir, bug):
    """The minimal reproductions, each as a real process (a crash or a hang must not take
    pytest down): exit 0, or exit 1 with located errors, in time."""
    path = write_case(workdir, {MAIN: bug.spec})
    found = problems(check_subprocess(path, timeout=bug.timeout, debug=True), workdir)
    assert not found, found
