"""How fast does `netspec lsp` answer an edit? The time from a textDocument/didChange to the
textDocument/publishDiagnostics for that version, in a warm server, seen by a client over stdio.

    python bench/lsp_latency.py [--runs 30] [--specs resnet50,lenet5,efficientnet_b7] [--json]

The server runs as editors start it (`python -m netspec lsp`, a subprocess speaking JSON-RPC
on its stdin and stdout; the client here is the standard library only). Each spec is opened,
checked a few times to warm the server (imports, the grammar, the parsed `use` libraries), then
edited `--runs` times; each edit alternates the text (a comment line added or removed, so every
version is a real change) and waits for that version's diagnostics. Medians and the 90th
percentile, milliseconds, on this machine:

- `change -> diagnostics, debounce 0`: the whole path, the debounce set to 0 (the target: under
  50 ms for specs/resnet50.net);
- `server check`: the compile and index alone, as the server logs it;
- `change -> diagnostics, debounce 150`: the editor's experience with the default debounce (a
  change waits 150 ms for the next keystroke before it is checked);
- `edit with an error`: the debounce-0 path when the edit introduces an error (the error's
  explanation walks the graph).

Standalone; `run(...)` returns the figures for bench/run_all.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from queue import Empty, Queue

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SPECS = ("resnet50", "lenet5", "efficientnet_b7")
TARGET_MS = 50.0


class Client:
    """A minimal LSP client over a subprocess's pipes."""

    def __init__(self, command: list[str]):
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, cwd=ROOT)
        self.messages: Queue = Queue()
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        stream = self.process.stdout
        while True:
            length = None
            while True:
                line = stream.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                name, _, value = line.decode("ascii").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            body = stream.read(length or 0)
            self.messages.put((time.perf_counter(), json.loads(body)))

    def send(self, message: dict) -> float:
        body = json.dumps(message).encode("utf-8")
        data = b"Content-Length: %d\r\n\r\n" % len(body) + body
        sent = time.perf_counter()
        self.process.stdin.write(data)
        self.process.stdin.flush()
        return sent

    def request(self, method: str, params) -> dict:
        self.next_id += 1
        ident = self.next_id
        self.send({"jsonrpc": "2.0", "id": ident, "method": method, "params": params})
        return self.wait(lambda m: m.get("id") == ident and "method" not in m)[1]

    def notify(self, method: str, params) -> float:
        return self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def wait(self, predicate, timeout: float = 60.0) -> tuple[float, dict]:
        deadline = time.perf_counter() + timeout
        while True:
            try:
                at, message = self.messages.get(timeout=max(0.0, deadline - time.perf_counter()))
            except Empty:
                raise TimeoutError("the server did not answer in time") from None
            if predicate(message):
                return at, message

    def close(self) -> None:
        try:
            self.request("shutdown", None)
            self.notify("exit", None)
            self.process.wait(timeout=10)
        except Exception:
            self.process.kill()


def _diagnostics_for(uri: str, version: int):
    return lambda m: (m.get("method") == "textDocument/publishDiagnostics"
                      and m["params"]["uri"] == uri and m["params"].get("version") == version)


CHECKED = re.compile(r"\(version (\d+)\) in ([0-9.]+) ms")


def _server_time(client: Client, version: int) -> float | None:
    """The server's own figure for that version (its log message follows the publication)."""
    try:
        _, message = client.wait(lambda m: m.get("method") == "window/logMessage"
                                 and f"(version {version})" in m["params"]["message"], timeout=5)
    except TimeoutError:
        return None
    match = CHECKED.search(message["params"]["message"])
    return float(match.group(2)) if match else None


def measure(spec: Path, runs: int, debounce_ms: float, error: bool = False, warmup: int = 5) -> dict:
    client = Client([sys.executable, "-m", "netspec", "lsp"])
    try:
        client.request("initialize", {"processId": os.getpid(), "rootUri": ROOT.as_uri(), "capabilities": {},
                                      "initializationOptions": {"debounce": debounce_ms}})
        client.notify("initialized", {})
        uri = spec.resolve().as_uri()
        text = spec.read_text()
        client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "netspec",
                                                                "version": 1, "text": text}})
        client.wait(_diagnostics_for(uri, 1))
        if error:  # one misspelt attribute in the first layer call
            edited = re.sub(r"\b(conv|linear)\(", r"\1(kernal=3, ", text, count=1)
        else:
            edited = text + "\n# edited\n"
        latencies, server = [], []
        version = 1
        for i in range(warmup + runs):
            version += 1
            body = edited if i % 2 == 0 else text
            sent = client.notify("textDocument/didChange", {
                "textDocument": {"uri": uri, "version": version}, "contentChanges": [{"text": body}]})
            at, message = client.wait(_diagnostics_for(uri, version))
            if error and i % 2 == 0:
                assert message["params"]["diagnostics"], "the edit with an error should be reported"
            took = _server_time(client, version)
            if i >= warmup and (not error or i % 2 == 0):
                latencies.append((at - sent) * 1000)
                if took is not None:
                    server.append(took)
        return {"median_ms": statistics.median(latencies), "p90_ms": _percentile(latencies, 0.9),
                "server_median_ms": statistics.median(server) if server else None, "samples": len(latencies)}
    finally:
        client.close()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run(specs: tuple[str, ...] = DEFAULT_SPECS, runs: int = 30) -> dict:
    """{spec: {case: figures}} for every spec under specs/ named in `specs`."""
    out: dict = {}
    for name in specs:
        spec = ROOT / "specs" / f"{name}.net"
        if not spec.exists():
            continue
        out[name] = {
            "debounce 0": measure(spec, runs, 0),
            "debounce 150": measure(spec, max(5, runs // 3), 150),
            "edit with an error": measure(spec, runs, 0, error=True),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--specs", default=",".join(DEFAULT_SPECS),
                        help="comma-separated names of specs/ files (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    results = run(tuple(s.strip() for s in args.specs.split(",") if s.strip()), args.runs)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"warm server, medians (p90) of {args.runs} edits, milliseconds\n")
    print("| spec | change -> diagnostics, debounce 0 | server check | debounce 150 | edit with an error |")
    print("|---|---:|---:|---:|---:|")
    for name, cases in results.items():
        zero, slow, bad = cases["debounce 0"], cases["debounce 150"], cases["edit with an error"]
        server = f"{zero['server_median_ms']:.1f}" if zero["server_median_ms"] is not None else "?"
        print(f"| {name} | {zero['median_ms']:.1f} ({zero['p90_ms']:.1f}) | {server} | "
              f"{slow['median_ms']:.1f} ({slow['p90_ms']:.1f}) | {bad['median_ms']:.1f} ({bad['p90_ms']:.1f}) |")
    if "resnet50" in results:
        figure = results["resnet50"]["debounce 0"]["median_ms"]
        print(f"\ntarget: resnet50 change -> diagnostics < {TARGET_MS:.0f} ms (debounce excluded): "
              f"{figure:.1f} ms, {'PASS' if figure < TARGET_MS else 'MISS'}")


if __name__ == "__main__":
    main()
