"""Load test of the web page: N concurrent fast requests from one local client.

Starts `nst serve --port 0` (or uses --url), opens N sessions (N visitors) and
uploads a different photo into each (crops of the sample, so no request reuses
another's encoding; --same-photo sends the sample N times from one session
instead, as slider moves do), sends one warm-up request, then the N requests at
once (one thread each) and checks that every one is
served: HTTP 200, state "done", a distinct job id, and a result PNG that decodes
at the requested size.  Prints the CPU, median and 95th-percentile latency (the
client's wall time per request, queueing included) and the server's own
seconds per image.

    python bench/bench_web.py                 # 20 requests at 256 px
    python bench/bench_web.py --requests 20 --size 512
    python bench/bench_web.py --rerender --size 512   # a slider move: with and without the photo's encoding kept
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

CONTENT, STYLE = "sample-tubingen.jpg", "sample-starry_night.jpg"


def start_server():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT))
    process = subprocess.Popen([str(ROOT / ".venv" / "bin" / "nst"), "serve", "--port", "0"],
                               stdout=subprocess.PIPE, text=True, env=env)
    line = process.stdout.readline()
    if "http://" not in line:
        process.kill()
        raise SystemExit(f"the server did not start: {line!r}")
    return process, line.split("open ", 1)[1].split()[0].rstrip("/")


def open_session(url: str) -> str:
    with urllib.request.urlopen(url + "/", timeout=60) as response:
        return response.headers["Set-Cookie"].split(";", 1)[0]


def call(url, cookie, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, headers={"Cookie": cookie,
                                                                     "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as response:
        return response.status, response.read()


def upload_crop(url, cookie, index):
    """Upload a 960x720 crop of the sample photo, ``4 * index`` px from the left; its image id."""
    from PIL import Image

    with Image.open(ROOT / "images" / "tubingen.jpg") as photo:
        buffer = io.BytesIO()
        photo.crop((4 * index, 0, 4 * index + 960, 720)).save(buffer, format="PNG")
    request = urllib.request.Request(url + "/api/images", data=buffer.getvalue(),
                                     headers={"Cookie": cookie, "X-File-Name": f"crop{index}.png"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())["id"]


def fast_request(url, cookie, size, strength, content):
    """One request: (latency s, job description, result PNG size) or an exception's text."""
    started = time.perf_counter()
    status, body = call(url, cookie, "/api/fast", {"content": content, "styles": [{"id": STYLE, "weight": 1}],
                                                   "size": size, "strength": strength})
    latency = time.perf_counter() - started
    job = json.loads(body)
    _, png = call(url, cookie, f"/api/jobs/{job['id']}/result.png")
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        image.load()
        return latency, status, job, image.size


def percentile(values, fraction):
    ordered = sorted(values)
    rank = fraction * (len(ordered) - 1)  # linear interpolation between closest ranks
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def rerender(size: int) -> int:
    """Seconds for three strength changes at ``size`` with a plain FastStylizer and the page's caching one."""
    from nst.io import images
    from nst.web import jobs as web_jobs
    from nst.fast.stylizer import FastStylizer
    from nst.optimise.stylize import get_weights
    from nst.weights.load import default_decoder_path

    vgg = get_weights()
    plain = FastStylizer(vgg, default_decoder_path())
    cached = web_jobs.caching_stylizer(vgg, default_decoder_path())
    content = images.read_rgb(ROOT / "images" / "tubingen.jpg")
    style = images.read_rgb(ROOT / "images" / "starry_night.jpg")
    height, width = images.size_for_long_side(*content.shape[:2], size)
    content = images.resize(content, width, height)
    style = images.resize(style, *images.size_for_long_side(*style.shape[:2], size)[::-1])
    for stylizer in (plain, cached):
        stylizer.stylize(content, [style], alpha=1.0)  # warm-up: tracing, the style's statistics
    results = {}
    for name, stylizer in (("plain", plain), ("caching", cached)):
        times = []
        for alpha in (0.9, 0.8, 0.7):
            started = time.perf_counter()
            results[name] = stylizer.stylize(content, [style], alpha=alpha)
            times.append(time.perf_counter() - started)
        print(f"{name:8s} re-render at {width}x{height}: " + ", ".join(f"{t:.2f} s" for t in times))
    same = (results["plain"] == results["caching"]).all()
    print(f"same pixels: {same}; load average {os.getloadavg()[0]:.1f}")
    return 0 if same else 1


def main(argv=None) -> int:
    from bench_fast import cpu_description
    from nst.io.images import size_for_long_side

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--url", help="a running server (default: start one)")
    parser.add_argument("--rerender", action="store_true", help="time slider re-renders in-process instead")
    parser.add_argument("--same-photo", action="store_true", help="every request stylises the same sample photo")
    args = parser.parse_args(argv)
    print(f"CPU: {cpu_description()}")
    if args.rerender:
        return rerender(args.size)
    process = None
    if args.url:
        url = args.url.rstrip("/")
    else:
        process, url = start_server()
    try:
        if args.same_photo:
            visitors = [(open_session(url), CONTENT)] * args.requests
        else:
            visitors = [(cookie, upload_crop(url, cookie, i)) for i, cookie in
                        enumerate(open_session(url) for _ in range(args.requests))]
        fast_request(url, open_session(url), args.size, 1.0, CONTENT)  # warm-up: the first call traces the networks
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.requests) as pool:
            # Strengths differ too, so that no two requests are the same job.
            futures = [pool.submit(fast_request, url, cookie, args.size, (i + 1) / args.requests, photo)
                       for i, (cookie, photo) in enumerate(visitors)]
            outcomes = []
            for future in futures:
                try:
                    outcomes.append(future.result())
                except Exception as error:  # a lost request: counted, not fatal
                    outcomes.append(error)
        wall = time.perf_counter() - started
    finally:
        if process is not None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
    expected = size_for_long_side(768, 1024, args.size)[::-1]  # tubingen.jpg is 1024x768, the crops 960x720
    served = [o for o in outcomes if not isinstance(o, Exception) and o[1] == 200 and o[2]["state"] == "done"
              and o[3] == expected]
    ids = {o[2]["id"] for o in served}
    latencies = [o[0] for o in served]
    engine = [o[2]["progress"]["elapsed_s"] for o in served]
    print(f"{args.requests} concurrent fast requests at {args.size} px, "
          f"{'one visitor, one photo' if args.same_photo else 'each from its own visitor and photo'}: "
          f"{len(served)} served, "
          f"{args.requests - len(served)} lost, {len(ids)} distinct jobs, all done in {wall:.1f} s")
    for outcome in outcomes:
        if outcome not in served:
            print(f"  not served: {outcome!r:.300}")
    if latencies:
        print(f"latency: median {statistics.median(latencies):.2f} s, 95th percentile "
              f"{percentile(latencies, 0.95):.2f} s, min {min(latencies):.2f} s, max {max(latencies):.2f} s")
        print(f"engine time per image: median {statistics.median(engine):.2f} s "
              f"(requests wait in one queue: one image at a time)")
    return 0 if len(served) == args.requests == len(ids) else 1


if __name__ == "__main__":
    sys.exit(main())
