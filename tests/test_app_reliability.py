"""Many users, a bounded queue, cancellation and memory, against the real server and shipped model."""
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import psutil
import pytest
from gradio_client import Client
from PIL import Image

from diffusion_core import DEFAULT_MODEL, GenerationParams, generate, load_model
from tests.app_server import running_app

USERS = 16


@pytest.fixture(scope="module")
def server():
    with running_app() as url:
        yield url


def server_rss_mb(url) -> float:
    port = int(url.rstrip("/").rsplit(":", 1)[1])
    for connection in psutil.net_connections("tcp"):
        if connection.laddr and connection.laddr.port == port and connection.status == "LISTEN" and connection.pid:
            return psutil.Process(connection.pid).memory_info().rss / 2**20
    raise RuntimeError("server process not found")


def run_user(url, seed):
    client = Client(url, verbose=False)
    _, _, gallery = client.predict(prompt="a blue star on a white background", seed=seed, steps=8,
                                   api_name="/txt2img")
    return Image.open(gallery[0]["image"])


def test_sixteen_concurrent_users_each_get_their_own_image(server, capsys):
    rss_before = server_rss_mb(server)
    seeds = list(range(100, 100 + USERS))
    with ThreadPoolExecutor(USERS) as pool:
        images = list(pool.map(lambda s: run_user(server, s), seeds))
    model = load_model(os.environ.get("DIFFUSION_MODEL", DEFAULT_MODEL))  # the server's model
    for seed, image in zip(seeds, images):
        assert GenerationParams.from_png_text(image.info["parameters"]).seed == seed
        expected = generate(model, GenerationParams(prompt="a blue star on a white background", seed=seed, steps=8,
                                                    guidance=model.defaults["guidance"],  # the API's default
                                                    width=128, height=128)).images[0]
        assert np.abs(np.asarray(image, np.int16) - np.asarray(expected, np.int16)).max() <= 1
    rss_after = server_rss_mb(server)
    with capsys.disabled():
        print(f"\nserver RSS before {rss_before:.0f} MB, after {USERS} users {rss_after:.0f} MB")
    assert rss_after < rss_before + 300


def test_a_full_queue_says_busy_instead_of_hanging(server):
    client = Client(server, verbose=False)
    jobs = [client.submit(prompt="a red circle", steps=5, api_name="/txt2img") for _ in range(30)]
    outcomes = []
    for job in jobs:
        try:
            job.result(timeout=300)
            outcomes.append("ok")
        except Exception as error:
            outcomes.append(str(error))
    busy = [o for o in outcomes if o != "ok"]
    assert outcomes.count("ok") >= 20 and busy, outcomes
    assert all("full" in o.lower() or "busy" in o.lower() for o in busy), busy
    assert len(client.predict(prompt="a red circle", steps=2, api_name="/txt2img")[2]) == 1


def test_cancelling_frees_the_worker_and_the_next_run_is_unaffected(server):
    client = Client(server, verbose=False)
    fresh = client.predict(prompt="a green triangle", seed=5, steps=10, api_name="/txt2img")[2][0]["image"]
    long_job = client.submit(prompt="a red square", steps=200, num_images=16, preview_every=1, api_name="/txt2img")
    deadline = time.monotonic() + 60
    while not long_job.outputs() and time.monotonic() < deadline:  # first preview streamed: it is running
        time.sleep(0.2)
    assert long_job.outputs(), "the long job never started"
    long_job.cancel()
    started = time.monotonic()
    after = client.predict(prompt="a green triangle", seed=5, steps=10, api_name="/txt2img")[2][0]["image"]
    waited = time.monotonic() - started
    assert waited < 30, f"the worker stayed busy for {waited:.0f}s after cancel"
    assert np.array_equal(np.asarray(Image.open(after)), np.asarray(Image.open(fresh)))
