"""Serving benchmark: this service on Ray Serve, side by side with naive Ray Serve and FastAPI.

Requests/s and p50/p99 latency at concurrency 1, 16 and 64 (closed-loop aiohttp client, loopback)
of **this service** (``ray_app.deploy``: stable + canary at weight 0.1, the device id only in the
request, online features from SQLite), the same with ``serving.max_batch_size`` 1, **naive Ray
Serve** (Serve's defaults, torch eager), **plain FastAPI** (uvicorn, ONNX Runtime) and the **Ray
Serve floor** (a constant answer); 256-row requests vs in-process ONNX Runtime; the start-up
``deploy()`` adds to ``serve.run`` and to an empty app of its shape; a version move under load;
where the time goes. Client and servers share the cores. Usage::

    python benchmarks/serving.py                          # about 6 minutes -> docs/benchmarks.md
    python benchmarks/serving.py --duration 2 --no-doc    # a quick look
    python benchmarks/serving.py --only startup           # the start-up figures alone
"""

import argparse
import asyncio
import contextlib
import json
import logging
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import timeit
import urllib.request
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import numpy as np
import onnxruntime
import psutil
import ray
import uvicorn
from docsection import cpu_name, write_section
from fastapi import FastAPI
from pydantic import create_model
from ray import serve
from ray.serve.context import _get_global_client
from ray.serve.schema import ServeDeploySchema

from mlops_kit import load_settings
from mlops_kit.data.generate import SpecGeneratorConfig, generate, known_ids, to_raw
from mlops_kit.data.spec import spec_of
from mlops_kit.demo.model import DEMO_CONFIG, train_on_lake
from mlops_kit.etl import features_table, read_table, run_etl, write_device_registry
from mlops_kit.features.store import FeatureClient
from mlops_kit.ingest.raw_zone import land
from mlops_kit.model import Preprocessor, bundle, load_predictor
from mlops_kit.registry import ModelRegistry, parse_policy
from mlops_kit.serving.deploy import serve_config
from mlops_kit.serving.http import create_app
from mlops_kit.serving.ray_app import _wait_running, build, deploy
from mlops_kit.serving.service import InferenceService

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
START, END = "<!-- serving:start -->", "<!-- serving:end -->"
UP_START, UP_END = "<!-- serving:startup:start -->", "<!-- serving:startup:end -->"
SHAPE_APP = """from ray.serve import deployment as app
class Side: reconfigure, describe = lambda self, config: None, lambda self: {}
class Front:
    async def __init__(self, stable, canary): await stable.describe.remote()
    reconfigure, __call__ = lambda self, config: None, lambda self, request: "ok"
def build(args): return app(Front, name="ingress").bind(*(app(Side, name=n).bind() for n in ("stable", "canary")))
"""  # the three deployments of this service, with nothing in them
OURS, NOBATCH, NAIVE = "this service", "this service, max_batch_size=1", "naive Ray Serve"
PLAIN, FLOOR = "plain FastAPI + uvicorn + ONNX Runtime", "Ray Serve floor (constant answer)"
APPS = {OURS: "mlops-kit", NOBATCH: "nobatch", NAIVE: "naive", FLOOR: "floor"}  # route names
PARTS = ("client", "HTTP proxy", "ingress", "model replica(s)", "uvicorn", "rest of Ray")
ROWS = 256  # rows of a batch request
MAIN_ROW = "| {c} | {name} | {rps:,.0f} ({per}) | {p50_ms:.1f} | {p99_ms:.1f} | {failed} ({timeouts}) | {vs:.3f}x | {hop} |"
BATCH_ROW = "| {c} | {rows:,.0f} | {rps:,.1f} | {p50_ms:.1f} | {p99_ms:.1f} | {failed} | {rows_per_call:,.0f} |"
CPU_ROW = "| {} |" + " {:.2f} |" * (len(PARTS) + 1) + " {:.0f}% | {:,.0f} |"
Log = list[tuple[float, float, str, str]]  # sent, answered, status, x-model-version


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--duration", type=float, default=10.0, help="seconds per set-up and cell")
    p.add_argument("--passes", type=int, default=2, help="alternating passes per cell")
    p.add_argument("--warmup", type=float, default=0.5, help="unrecorded seconds before a pass")
    p.add_argument("--concurrency", default="1,16,64", help="closed-loop callers, comma list")
    p.add_argument("--batch-concurrency", default="1,16", help="callers sending 256-row requests")
    p.add_argument("--entities", type=int, default=256, help="devices in the lake")
    p.add_argument("--startup-reps", type=int, default=3, help="timed deploys of each kind")
    p.add_argument("--timeout", type=float, default=10.0, help="client timeout per request, s")
    p.add_argument("--out-json", help="write the raw figures here")
    p.add_argument("--no-doc", action="store_true", help="print only; leave docs untouched")
    p.add_argument("--only", choices=["startup"], help="build the lake, then only this part")
    p.add_argument("--plain-server", nargs=3, help=argparse.SUPPRESS)  # port, bundle, key
    return p.parse_args(argv)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def build_lake(root: Path, entities: int) -> dict[str, Any]:
    """The lake, its online store, two registered versions, a copy of the stable's bundle."""
    t0 = datetime(2026, 3, 2, tzinfo=timezone.utc)
    s = load_settings(home=root / "home", dataset="iot_readings", serving={"port": _free_port()})
    spec = spec_of(s)
    table = generate(spec, SpecGeneratorConfig(n_entities=entities, start=t0, freq_s=900))
    if spec.entity.known_ids.source == "registry":
        write_device_registry(s, known_ids(spec, entities))
    land(s.storage.raw_uri or "", "files", to_raw(spec, table).to_bytes(), "jsonl")
    if run_etl(s, now=t0 + timedelta(days=4)).status != "committed":
        raise RuntimeError("the benchmark's ETL run did not commit")
    online = FeatureClient(s)
    online.apply()
    online.materialize(end=t0 + timedelta(days=4))
    rules = {"thresholds": {"roc_auc": 0.0}, "champion": {"metric": "roc_auc", "margin": -1.0}}
    policy = parse_policy({**rules, "require_approval": False}, "(benchmark)")
    registry = ModelRegistry(s)
    name, versions, copy = registry.default_name(None), [], str(root / "stable-bundle")
    for i, target in enumerate(("champion", "challenger")):
        trained = train_on_lake(s, config={**DEMO_CONFIG, "seed": 11 + i})
        if i == 0:
            bundle.copy(trained["bundle_uri"], copy)
        version = str(registry.register(trained["run_id"], name, who="benchmark")["version"])
        ev = trained["evaluation_uri"]
        decision = registry.promote(name, version, policy, target=target, evaluation=ev)
        if not decision.accepted:
            raise RuntimeError(f"promotion of version {version} refused: {decision.reasons()}")
        versions.append(version)
    key, names = spec.entity.join_key, list(load_predictor(copy).feature_names)
    ids = sorted(set(read_table(s, features_table(s)).column(key).to_pylist()))
    got = online.online(ids, names)
    rows = [{key: e, **{n: got.columns[n][j] for n in names}} for j, e in enumerate(ids)]
    rows = [r for r in rows if r[key] not in got.missing]
    out = dict(settings=s, versions=versions, bundle=copy, key=key, names=names, rows=rows)
    return {**out, "ids": [r[key] for r in rows]}


class NaiveModel:
    """Naive Ray Serve: torch eager on ``model.pt``, one row per request, Serve's defaults."""

    def __init__(self, bundle: str, key: str) -> None:
        import torch

        from mlops_kit.training.model import load_model

        self.torch, self.key, self.model = torch, key, load_model(os.path.join(bundle, "model.pt"))
        self.pre = Preprocessor.load(os.path.join(bundle, "preprocess.json"))

    async def __call__(self, request: Any) -> dict[str, Any]:
        body = await request.json()
        x = self.pre.transform({n: [body[n]] for n in self.pre.feature_names})
        with self.torch.inference_mode():
            p = self.torch.sigmoid(self.model(self.torch.from_numpy(x)))
        return {self.key: body[self.key], "score": float(p[0, 0])}


async def constant(request: Any) -> dict[str, str]:
    """A deployment answering a constant (the start-up reference and Ray Serve's floor)."""
    return {"ok": "yes"}


def plain_app(bundle: str, key: str) -> Any:
    """What a user would write on one machine: FastAPI, pydantic, ONNX Runtime in-process."""
    predictor, app = load_predictor(bundle), FastAPI()
    names = predictor.feature_names
    Request = create_model("Request", **{key: (str, ...), **{n: (float, ...) for n in names}})

    @app.post("/predict")
    async def predict(req: Request) -> dict[str, Any]:
        score = predictor.predict({n: [getattr(req, n)] for n in names})[0]
        return {key: getattr(req, key), "score": float(score)}

    app.get("/health")(lambda: {"ok": True})
    return app


def _start_plain(port: int, bundle: str, key: str) -> subprocess.Popen[bytes]:
    argv = [sys.executable, __file__, "--plain-server", str(port), bundle, key]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        health = f"http://127.0.0.1:{port}/health"
        with contextlib.suppress(OSError), urllib.request.urlopen(health, timeout=1):
            return proc
        time.sleep(0.2)
    raise RuntimeError("the plain FastAPI server did not start within 120 s")


async def _drive(
    url: str, bodies: list[bytes], c: int, t_start: float, stop: Callable[[], bool], timeout: float
) -> Log:
    """Closed loop: ``c`` callers each send, await the answer, send again until ``stop()``;
    the log of the requests sent from ``t_start`` on (a timeout's status is ``timeout``)."""
    log: Log = []
    conn, limit = aiohttp.TCPConnector(limit=c), aiohttp.ClientTimeout(total=timeout)
    json_type = {"content-type": "application/json"}
    async with aiohttp.ClientSession(connector=conn, timeout=limit, headers=json_type) as http:

        async def caller(i: int) -> None:
            while not stop():
                t0 = time.perf_counter()
                try:
                    async with http.post(url, data=bodies[i % len(bodies)]) as r:
                        await r.read()
                        code, version = str(r.status), r.headers.get("x-model-version") or "-"
                except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
                    timed_out = isinstance(exc, asyncio.TimeoutError)
                    code, version = "timeout" if timed_out else type(exc).__name__, "-"
                if t0 >= t_start:
                    log.append((t0, time.perf_counter(), code, version))
                i += c

        await asyncio.gather(*(caller(k) for k in range(c)))
    return log


def _cpu() -> tuple[Counter[str], set[int]]:
    """CPU seconds (user + system) so far of this process (the client) and its descendants,
    by role; the process ids of this service's replicas."""
    me, out, replicas = psutil.Process(), Counter[str](), set()
    for p in [me, *me.children(recursive=True)]:
        try:
            t, cmd = p.cpu_times(), " ".join(p.cmdline())
        except psutil.Error:
            continue
        m = re.search(r"ServeReplica:([\w.-]+):([\w-]+)", cmd)
        role = f"replica {m.group(1)}:{m.group(2)}" if m else "rest of Ray"
        if p.pid == me.pid or "ProxyActor" in cmd or "--plain-server" in cmd:
            role = "client" if p.pid == me.pid else "HTTP proxy" if "Proxy" in cmd else "uvicorn"
        out[role] += t.user + t.system
        if role.startswith(f"replica {APPS[OURS]}:"):
            replicas.add(p.pid)
    return out, replicas


def _scrape(url: str | None) -> Counter[str]:
    """Sums over all labels of the ingress's batch-size and round-trip series."""
    out = Counter[str]()
    if url:
        with urllib.request.urlopen(url, timeout=30) as r:
            for line in r.read().decode().splitlines():
                m = re.match(r"mlops_kit_serving_(\w+)_(sum|count)\{", line)
                if m and m.group(1) in ("batch_size", "request_latency_seconds"):
                    out[f"{m.group(1)}_{m.group(2)}"] += float(line.rsplit(" ", 1)[1])
    return out


def measure(setup: tuple[str, list[bytes], str | None], c: int, seconds: float,
            args: argparse.Namespace) -> dict[str, Any]:  # fmt: skip
    """One pass of one cell: the requests, the CPU each process spent, the ingress's metrics."""
    url, bodies, metrics = setup
    before, (cpu0, _) = _scrape(metrics), _cpu()
    t_start = time.perf_counter() + args.warmup
    stop = lambda: time.perf_counter() >= t_start + seconds  # noqa: E731
    log = asyncio.run(_drive(url, bodies, c, t_start, stop, args.timeout))
    after, (cpu, _) = _scrape(metrics), _cpu()
    cpu.subtract(cpu0)
    after.subtract(before)
    return {"log": log, "t_start": t_start, "cpu": cpu, "metrics": after}


def summarize(passes: list[dict[str, Any]]) -> dict[str, Any]:
    """A cell's figures over its passes: req/s, pooled latencies, failures, CPU per request."""
    logs = [p["log"] for p in passes]
    secs = [max((t1 for _, t1, _, _ in p["log"]), default=p["t_start"] + 1) - p["t_start"]
            for p in passes]  # fmt: skip
    reqs = [x for log in logs for x in log]
    n, status = len(reqs), Counter(code for _, _, code, _ in reqs)
    lat = np.array([t1 - t0 for t0, t1, _, _ in reqs] or [float("nan")]) * 1e3
    cpu, mt = (sum((p[k] for p in passes), Counter()) for k in ("cpu", "metrics"))
    pass_rps = [len(x) / s for x, s in zip(logs, secs, strict=True)]
    out = {"n": n, "rps": n / sum(secs), "pass_rps": pass_rps, "status": dict(status)}
    out.update(p50_ms=float(np.percentile(lat, 50)), p99_ms=float(np.percentile(lat, 99)))
    out.update(timeouts=status["timeout"], failed=n - status["200"])
    out["versions"] = dict(Counter(v for *_, v in reqs))
    out["cpu_ms"] = {k: 1e3 * v / max(n, 1) for k, v in cpu.items()}
    out["rows_per_call"] = mt["batch_size_sum"] / max(mt["batch_size_count"], 1)
    calls = max(mt["request_latency_seconds_count"], 1)
    out["round_trip_ms"] = 1e3 * mt["request_latency_seconds_sum"] / calls
    return out


def in_process(lake: dict[str, Any]) -> dict[str, float]:
    """Microseconds per call of the work behind a request, in this process."""
    key, names, first = lake["key"], lake["names"], lake["rows"][0]
    service = InferenceService(lake["settings"], version=lake["versions"][0])
    service.warm_up()
    predictor = load_predictor(lake["bundle"])
    ids = [{key: lake["ids"][j % len(lake["ids"])]} for j in range(ROWS)]
    cols = {n: [lake["rows"][j % len(lake["rows"])][n] for j in range(ROWS)] for n in names}
    x, loop, asgi = predictor.features(cols), asyncio.new_event_loop(), {}
    for name, app in (("ours", create_app(service)), ("plain", plain_app(lake["bundle"], key))):
        asgi[name] = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
    post = lambda app, body: loop.run_until_complete(asgi[app].post("/predict", json=body))  # noqa: E731
    calls = {
        "create_app(service), 1 id": lambda: post("ours", ids[0]),
        "plain FastAPI app, 1 row": lambda: post("plain", first),
        "service.predict, 1 id": lambda: service.predict(ids[:1]),
        "online lookup, 1 id": lambda: service._online_client().online([first[key]], names),
        "Predictor.predict, 1 row": lambda: predictor.predict({n: [first[n]] for n in names}),
        f"service.predict, {ROWS} ids": lambda: service.predict(ids),
        f"Predictor.predict, {ROWS} rows": lambda: predictor.predict(cols),
        f"ONNX Runtime session.run, {ROWS} rows": lambda: predictor.run(x),
    }  # fmt: skip
    out = {}
    for label, call in calls.items():
        n, _ = (timer := timeit.Timer(call)).autorange()  # at least 0.2 s, then best of 3
        out[label] = 1e6 * min(timer.repeat(3, n)) / n
    loop.close()
    return out


def startup(lake: dict[str, Any], reps: int) -> dict[str, Any]:
    """Seconds of ``deploy()`` of this service, of an empty app of its shape (:data:`SHAPE_APP`)
    and of ``serve.run`` of a trivial deployment, alternating."""
    s, (v1, v2), trivial = lake["settings"], lake["versions"], serve.deployment(constant)
    rollout = dict(stable_version=v1, canary_version=v2, canary_weight=0.1)
    (app,) = serve_config(s, **rollout)["applications"]  # the same deployments and runtime_env
    app.update(name="shape", route_prefix="/shape", import_path="mlk_shape_app:build", args={})
    shape = ServeDeploySchema.model_validate({"applications": [app]})
    runs = {"trivial": lambda: serve.run(trivial.bind(), name="trivial", route_prefix="/trivial"),
            "shape": lambda: (_get_global_client().deploy_apps(shape, _blocking=False),
                              _wait_running("shape", 600)),
            "ours": lambda: deploy(s, **rollout)}  # fmt: skip
    runs["trivial"]()  # warms the controller
    serve.delete("trivial")
    out: dict[str, Any] = {k: [] for k in runs}
    for rep in range(reps):
        for which in list(runs)[:: 1 if rep % 2 == 0 else -1]:
            t0 = time.perf_counter()
            runs[which]()
            out[which].append(time.perf_counter() - t0)
            serve.delete({"ours": s.serving.app_name}.get(which, which))
    return out


def version_move(lake: dict[str, Any], url: str, c: int, timeout: float) -> dict[str, Any]:
    """Move the stable to the canary's version (no canary after) while ``c`` callers run;
    they go on until 6 s after ``deploy()`` returned."""
    s, (v1, v2) = lake["settings"], lake["versions"]
    bodies = [json.dumps({lake["key"]: e}).encode() for e in lake["ids"]]
    before, marks = _cpu()[1], {}

    def move() -> None:
        time.sleep(2.0)
        marks["start"] = time.perf_counter()
        deploy(s, stable_version=v2)
        marks["returned"] = time.perf_counter()

    (mover := threading.Thread(target=move)).start()
    stop = lambda: time.perf_counter() > marks.get("returned", float("inf")) + 6  # noqa: E731
    log = asyncio.run(_drive(url, bodies, c, 0.0, stop, timeout))
    mover.join()
    t0, end = marks["start"], max(t1 for _, t1, _, _ in log)
    stale = [t1 for _, t1, _, v in log if t1 >= t0 and v != v2]
    failures = Counter(code for _, _, code, _ in log if code != "200")
    return dict(from_to=(f"stable {v1} + canary {v2} at weight 0.1", f"stable {v2}, no canary"),
                requests=len(log), failed=sum(failures.values()), failures=dict(failures),
                deploy_s=marks["returned"] - t0, observed_s=end - t0,
                converged_s=max(stale) - t0 if stale else 0.0,
                converged=not stale or max(stale) < end - 2.0, replicas_kept=_cpu()[1] == before)  # fmt: skip


def run(args: argparse.Namespace) -> dict[str, Any]:
    t_all, load_start = time.perf_counter(), os.getloadavg()
    root = Path(tempfile.mkdtemp(prefix="mlk-serving-bench-"))
    plain: subprocess.Popen[bytes] | None = None
    try:
        lake = build_lake(root, args.entities)
        setup_s = time.perf_counter() - t_all
        s, (v1, v2), key = lake["settings"], lake["versions"], lake["key"]
        (root / "mlk_shape_app.py").write_text(SHAPE_APP)  # Ray's workers inherit the path
        os.environ["PYTHONPATH"] = os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])
        ray.init(num_cpus=8, include_dashboard=False, logging_level=logging.ERROR,
                 log_to_driver=False, _node_ip_address="127.0.0.1",
                 object_store_memory=256 * 2**20)  # fmt: skip
        serve.start(http_options={"host": s.serving.host, "port": s.serving.port})
        base = f"http://127.0.0.1:{s.serving.port}"
        res = {"command": " ".join(["python benchmarks/serving.py", *sys.argv[1:]]),
               "when": time.strftime("%Y-%m-%d"), "versions": [v1, v2],
               "startup_s": startup(lake, args.startup_reps)}  # fmt: skip
        if args.only == "startup":
            return _ended(res, load_start, setup_s, t_all)
        deploy(s, stable_version=v1, canary_version=v2, canary_weight=0.1)
        one = s.model_copy(update={"serving": s.serving.model_copy(update={"max_batch_size": 1})})
        split = dict(settings=one.model_dump(mode="json"), stable_version=v1, canary_version=v2)
        apps = {NOBATCH: build({**split, "canary_weight": 0.1}),
                NAIVE: serve.deployment(NaiveModel).bind(lake["bundle"], key),
                FLOOR: serve.deployment(constant).options(max_ongoing_requests=1024).bind()}  # fmt: skip
        for name, app in apps.items():
            serve.run(app, name=APPS[name], route_prefix=f"/{APPS[name]}")
        plain = _start_plain(port := _free_port(), lake["bundle"], key)
        ids = [json.dumps({key: e}).encode() for e in lake["ids"]]
        rows = [json.dumps(r).encode() for r in lake["rows"]]
        setups = {n: (f"{base}/{APPS[n]}", rows, None) for n in (NAIVE, FLOOR)}
        setups[OURS] = (f"{base}/predict", ids, f"{base}/metrics")
        setups[NOBATCH] = (f"{base}/nobatch/predict", ids, f"{base}/nobatch/metrics")
        setups[PLAIN] = (f"http://127.0.0.1:{port}/predict", rows, None)
        raw: dict[str, dict[int, list[dict[str, Any]]]] = {k: {} for k in setups}
        for c in map(int, args.concurrency.split(",")):
            for p in range(args.passes):
                for name in list(setups)[:: 1 if p % 2 == 0 else -1]:
                    x = measure(setups[name], c, args.duration / args.passes, args)
                    raw[name].setdefault(c, []).append(x)
                    print(f"c={c} pass {p + 1} {name}: {len(x['log'])} requests", flush=True)
        ks, (url, _, metrics) = lake["ids"], setups[OURS]
        batches = [json.dumps([{key: ks[(j + k) % len(ks)]} for k in range(ROWS)]).encode()
                   for j in range(0, len(ks), 7)]  # fmt: skip
        batch = {c: summarize([measure((url, batches, metrics), c, args.duration, args)])
                 for c in map(int, args.batch_concurrency.split(","))}  # fmt: skip
        res.update(batch=batch, args={k: v for k, v in vars(args).items() if k != "plain_server"},
                   cells={k: {c: summarize(v) for c, v in r.items()} for k, r in raw.items()},
                   in_process_us=in_process(lake), move=version_move(lake, url, 16, args.timeout))  # fmt: skip
        return _ended(res, load_start, setup_s, t_all)
    finally:
        if plain is not None:
            plain.terminate()
            plain.wait(30)
        if ray.is_initialized():
            serve.shutdown()
            ray.shutdown()
        shutil.rmtree(root, ignore_errors=True)


def _ended(res: dict[str, Any], load: Any, setup_s: float, t_all: float) -> dict[str, Any]:
    res["load_average"] = [[round(x, 2) for x in la] for la in (load, os.getloadavg())]
    return {**res, "seconds": [setup_s, time.perf_counter() - t_all]}


def targets(res: dict[str, Any], c: int) -> list[str]:
    """The issue's targets, each met or NOT met, with the measured figure."""
    cells, mv = res["cells"], res["move"]
    o, pl, nv = (cells[k][c] for k in (OURS, PLAIN, NAIVE))
    ceiling = ROWS / (res["in_process_us"][f"ONNX Runtime session.run, {ROWS} rows"] * 1e-6)
    bc, b = max(res["batch"].items(), key=lambda kv: kv[1]["rps"])
    return [_target(*row) for row in [
        (f"c={c}: req/s, this service / plain FastAPI", o["rps"] / pl["rps"], ">=", 0.8, "x"),
        (f"c={c}: p99, this service / plain FastAPI", o["p99_ms"] / pl["p99_ms"], "<=", 2, "x"),
        (f"c={c}: timeouts of this service", o["timeouts"], "<=", 0, ""),
        (f"c={c}: req/s, this service / naive Ray Serve", o["rps"] / nv["rps"], ">=", 10, "x"),
        *[(f"c={k}: req/s, batching / max_batch_size=1", x["rps"] / cells[NOBATCH][k]["rps"],
           ">=", 1, "x") for k, x in cells[OURS].items()],
        (f"{ROWS}-row requests (c={bc}): rows/s / in-process ONNX Runtime",
         b["rps"] * ROWS / ceiling, ">=", 0.5, "x"),
        ("version move, until every answer names the new version",
         mv["converged_s"] if mv["converged"] else float("inf"), "<=", 4, " s"),
        ("failed requests during the version move", mv["failed"], "<=", 0, ""),
    ]]  # fmt: skip


def _target(what: str, v: float, op: str, lim: float, unit: str) -> str:
    met = "met" if (v >= lim if op == ">=" else v <= lim) else "NOT met"
    return f"- {what}: {v:.3g}{unit} (target {op} {lim}{unit}): **{met}**"


def render_startup(res: dict[str, Any]) -> str:
    """The start-up part of the section (its own markers: ``--only startup`` rewrites it)."""
    st, (load0, load1), (t_setup, t_all) = res["startup_s"], res["load_average"], res["seconds"]
    med = {k: statistics.median(st[k]) for k in ("ours", "shape", "trivial")}
    t = {k: ", ".join(f"{x:.2f}" for x in st[k]) for k in med}
    ours, ray_own = med["ours"] - med["shape"], med["shape"] - med["trivial"]
    return f"""{UP_START}
### Start-up

`{res["command"]}` on {res["when"]}, {t_all:.0f} s ({t_setup:.0f} s building the lake, two models), load
average {load0} at the start, {load1} at the end. Median of {len(st["ours"])} alternating runs: `deploy()` of this
service (ingress, stable and canary loading their models) {med["ours"]:.2f} s ({t["ours"]}); an empty app of
its shape (a build task; the same deployments, `user_config` and `runtime_env`; constant answers)
{med["shape"]:.2f} s ({t["shape"]}); `serve.run` of a trivial deployment {med["trivial"]:.2f} s ({t["trivial"]}). Of the
{ours + ray_own:.2f} s beyond `serve.run`, {ray_own:.2f} s is Ray's for this shape (a build task, then three
replica processes at once on {os.cpu_count()} cores) and {ours:.2f} s our code (locating the versions in the
registry, loading and warming up the models, the ingress's app).

{_target("start-up our code adds to `serve.run`", ours + ray_own, "<=", 1, " s")}
- the same, less Ray's own for this shape: {ours:.2f} s
{UP_END}"""  # fmt: skip


def render(res: dict[str, Any]) -> str:
    a, cells, mv, ip = (res[k] for k in ("args", "cells", "move", "in_process_us"))
    (v1, v2), cores = res["versions"], os.cpu_count() or 1
    c = 64 if 64 in cells[OURS] else max(cells[OURS])
    rows, cpu, tot, ing = [], [], {}, {}
    for k, n in ((k, n) for k in cells[OURS] for n in cells):
        x, per = cells[n][k], ", ".join(f"{r:,.0f}" for r in cells[n][k]["pass_rps"])
        hop = f"{x['rows_per_call']:.2f}, {x['round_trip_ms']:.1f}" if n in (OURS, NOBATCH) else ""
        vs = x["rps"] / cells[PLAIN][k]["rps"]
        rows.append(MAIN_ROW.format(c=k, name=n, per=per, vs=vs, hop=hop, **x))
        if k == c:  # CPU by part; other set-ups' idle replicas count as rest of Ray
            parts = dict.fromkeys(PARTS, 0.0)
            for role, ms in x["cpu_ms"].items():
                if role.startswith(f"replica {APPS.get(n, '-')}:"):
                    role = "ingress" if role.endswith(":ingress") else "model replica(s)"
                parts[role if role in parts else "rest of Ray"] += ms
            tot[n], ing[n] = sum(parts.values()), parts["ingress"]
            busy, bound = tot[n] * x["rps"] / (10 * cores), 1e3 * cores / tot[n]
            cpu.append(CPU_ROW.format(n, *parts.values(), tot[n], busy, bound))
    batch = [BATCH_ROW.format(c=k, rows=x["rps"] * ROWS, **x) for k, x in res["batch"].items()]
    share = ", ".join(f"{x['versions'].get(v2, 0) / max(x['n'], 1):.1%}"
                      for x in cells[OURS].values())  # fmt: skip
    floor = 1e3 * cores / tot[FLOOR]
    ceil, pre = ip[f"ONNX Runtime session.run, {ROWS} rows"], ip[f"Predictor.predict, {ROWS} rows"]
    one, many = ip["service.predict, 1 id"], ip[f"service.predict, {ROWS} ids"]
    ours_asgi, plain_asgi = ip["create_app(service), 1 id"], ip["plain FastAPI app, 1 row"]
    nl, (load0, load1), (t_setup, t_all) = "\n", res["load_average"], res["seconds"]
    return f"""{START}
## Serving: this service on Ray Serve, naive Ray Serve, plain FastAPI

`{res["command"]}` on {res["when"]}, {t_all:.0f} s ({t_setup:.0f} s building the lake, the online store
and two models). {cpu_name()}, **{cores} cores shared by the client and every server**, load average
(1, 5, 15 min) {load0} at the start and {load1} at the end; Python {platform.python_version()}, Ray
{ray.__version__}, onnxruntime {onnxruntime.__version__}. Closed-loop client: aiohttp, one connection per
caller, loopback, timeout {a["timeout"]:g} s; each cell {a["duration"]:g} s per set-up in {a["passes"]} passes of
alternating order, each after {a["warmup"]:g} s unrecorded. This service: stable {v1}, canary {v2} at weight
0.1 (the canary answered {share} of the requests, by concurrency), the device id only in the
request; the others score version {v1}'s model on the same features, sent in the request. Ray has
8 logical CPUs so that every set-up stays deployed; only the one measured is called. Last column:
the ingress's metrics, rows per model call and the mean ms from the ingress to a replica and back.

| c | set-up | req/s (per pass) | p50 ms | p99 ms | failed (timeouts) | vs plain | rows/call, hop ms |
|---:|---|---:|---:|---:|---:|---:|---:|
{nl.join(rows)}

**Batch requests** of {ROWS} device ids against this service, {a["duration"]:g} s per cell (in process,
ONNX Runtime's `session.run` scores {ROWS / ceil * 1e6:,.0f} rows/s of the same features,
`Predictor.predict` with preprocessing {ROWS / pre * 1e6:,.0f}):

| c | rows/s | requests/s | p50 ms | p99 ms | failed | rows per model call |
|---:|---:|---:|---:|---:|---:|---:|
{nl.join(batch)}

**Version move** from {mv["from_to"][0]} to {mv["from_to"][1]} (`deploy(settings, stable_version=
'{v2}')`), 16 callers: `deploy()` returned after {mv["deploy_s"]:.2f} s; the last answer naming another
version came {mv["converged_s"]:.2f} s after the call (answers observed for {mv["observed_s"]:.1f} s); {mv["failed"]}
of {mv["requests"]:,} requests failed{f" {mv['failures']}" if mv["failures"] else ""}; replica processes {"kept" if mv["replicas_kept"] else "replaced"}.

### Targets

{nl.join(targets(res, c))}

### Where the time goes

CPU ms per request at c={c} by process (user + system; busy: share of the {cores} cores in use;
bound: the req/s the cores allow at that CPU per request):

| set-up | {" | ".join(PARTS)} | total | busy | bound |
|---|{"---:|" * (len(PARTS) + 3)}
{nl.join(cpu)}

- Ray Serve with no work at all (the floor) costs {tot[FLOOR]:.1f} ms of CPU per request in the HTTP
  proxy and one replica, which bounds any Ray Serve deployment on these cores to about
  {floor:,.0f} req/s, {floor / cells[PLAIN][c]["rps"]:.2f}x what plain FastAPI served at c={c}.
- This service costs {tot[OURS]:.1f} ms, {tot[OURS] / tot[FLOOR]:.1f}x the floor: two hops (ingress, then model
  replica), {ing[OURS]:.1f} ms in the ingress. In one process, over ASGI, our FastAPI app answers one id in
  {ours_asgi:,.0f} us, `service.predict` (validation, online lookup, ONNX) taking {one:,.0f} us of it; the
  plain app answers one row in {plain_asgi:,.0f} us.
- A {ROWS}-id batch takes {many / 1e3:.1f} ms in `service.predict` in process against {pre / 1e3:.2f} ms to
  score its rows: validation and the online lookup hold one core to {ROWS / many * 1e6:,.0f} rows/s.

The same work in this one process, microseconds per call (over ASGI: httpx's client included):

| call | us |
|---|---:|
{nl.join(f"| {k} | {v:,.1f} |" for k, v in ip.items())}

{render_startup(res)}
{END}"""  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    if args.plain_server:
        port, bundle, key = args.plain_server
        uvicorn.run(plain_app(bundle, key), host="127.0.0.1", port=int(port), log_level="warning",
                    access_log=False)  # fmt: skip
        return 0
    res = run(args)
    if args.out_json:
        Path(args.out_json).write_text(json.dumps(res, indent=2, default=str))
    print(text := (render_startup if args.only else render)(res))
    if args.only and UP_START not in DOC.read_text() and not args.no_doc:
        print(f"{DOC} has no {UP_START} yet: run the whole benchmark once", file=sys.stderr)
        return 1
    if not args.no_doc:
        write_section(DOC, *((UP_START, UP_END) if args.only else (START, END)), text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
