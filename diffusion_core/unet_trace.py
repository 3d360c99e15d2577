"""The UNet's noise prediction, replayed from a TorchScript trace on the CPU: same arithmetic, less Python.

A small UNet's call on the CPU spends a large share of its time in Python: diffusers' module tree
dispatches its aten ops one by one. A trace records those ops once and replays them from C++. The same
kernels run, so predictions are bit-identical, and an image of the shipped model takes markedly less
time (measured, with dates, in benchmarks/README.md). SD-sized UNets are not traced: their op time dwarfs
the Python, and recording and checking a trace costs a few UNet calls per new input signature.

A trace is valid only for the input shapes and dtypes it recorded (diffusers branches on sizes), so
one is kept per signature. Each new trace is checked against an eager call on the same inputs before
it is used; where tracing fails or disagrees (a model the tracer cannot follow, a torch without
torch.jit), calls stay eager: the images are the same, only slower.

Why not torch.compile or torch.export (torch.jit is deprecated in their favour): on the 2-core
development CPUs inductor compiled for a long time and ran no faster than eager, and an exported
program dispatches its ops from Python again (benchmarks/README.md).
"""
import logging
import os
import threading
import warnings
import weakref
from collections import OrderedDict
from contextlib import contextmanager

import torch
from diffusers import ModelMixin

log = logging.getLogger(__name__)

# Read at call time, so a benchmark can compare both sides in one process.
ENABLED = os.environ.get("DIFFUSION_TRACE", "1").lower() not in ("0", "false", "no")
# Signatures kept per UNet: sizes x batch sizes a session uses (a grid, guidance 1, and a strength sweep,
# whose batch grows by one cell's rows each time a strength starts).
MAX_TRACES = 16
# The shipped UNet has a few million parameters, SD's hundreds of millions, whose calls spend almost all
# their time in kernels (benchmarks/README.md); anything past this is called as it is.
MAX_TRACED_PARAMETERS = 100_000_000
EAGER = object()  # marks a signature whose trace failed or disagreed

# UNet -> its TracedNoisePredictor, which holds the UNet only weakly, so a model the app lets go of
# is freed with its traces.
_predictors = weakref.WeakKeyDictionary()
_predictors_lock = threading.Lock()
# Per thread: id(unet) -> a predictor standing in for it (see predicting_with).
_stand_ins = threading.local()


@contextmanager
def predicting_with(unet, predictor):
    """Within the block, on this thread only, noise_predictor(unet) returns `predictor`.

    Attention capture (diffusion_core/attention.py) needs the eager UNet, whose attention processors are
    Python that a trace would replay past; this lets it run through generate() unchanged, while requests
    on other threads keep their traced calls."""
    stand_ins = _stand_ins.__dict__.setdefault("by_unet", {})
    previous = stand_ins.get(id(unet))
    stand_ins[id(unet)] = predictor
    try:
        yield predictor
    finally:
        if previous is None:
            del stand_ins[id(unet)]
        else:
            stand_ins[id(unet)] = previous


def noise_predictor(unet):
    """`predict(sample, timestep, text_embeddings) -> noise` for the denoising loop.

    Traced for a small diffusers UNet on the CPU; a GPU's, an SD-sized or a torch.compile'd UNet
    (not a ModelMixin) is called as it is. A stand-in set by predicting_with comes first."""
    stand_in = getattr(_stand_ins, "by_unet", {}).get(id(unet))
    if stand_in is not None:
        return stand_in
    if not (ENABLED and isinstance(unet, ModelMixin) and unet.device.type == "cpu"):
        return EagerNoisePredictor(unet)
    with _predictors_lock:
        if unet in _predictors:  # looked up first: counting parameters walks every tensor
            return _predictors[unet]
        if unet.num_parameters() > MAX_TRACED_PARAMETERS:
            return EagerNoisePredictor(unet)
        _predictors[unet] = TracedNoisePredictor(unet)
        return _predictors[unet]


class EagerNoisePredictor(torch.nn.Module):
    """The UNet's call with plain tensors in and out: what the tracer records."""

    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, text_embeddings):
        return self.unet(sample, timestep, encoder_hidden_states=text_embeddings, return_dict=False)[0]


class TracedNoisePredictor:
    def __init__(self, unet):
        self.unet = weakref.ref(unet)
        self.traces = OrderedDict()  # input signature -> traced module, or EAGER
        self.lock = threading.Lock()

    def __call__(self, sample, timestep, text_embeddings):
        inputs = (sample, torch.as_tensor(timestep, device=sample.device), text_embeddings)
        key = tuple((tuple(t.shape), t.dtype, t.device) for t in inputs)
        with self.lock:  # the app may run two requests at once; trace each signature once
            if key not in self.traces:
                self.traces[key] = self._trace(inputs)
                if len(self.traces) > MAX_TRACES:
                    self.traces.popitem(last=False)
            self.traces.move_to_end(key)
            trace = self.traces[key]
        return self.eager(*inputs) if trace is EAGER else trace(*inputs)

    def eager(self, *inputs):
        return EagerNoisePredictor(self.unet())(*inputs)

    def _trace(self, inputs):
        try:
            with torch.no_grad(), warnings.catch_warnings():
                # TracerWarnings about size-dependent branches are why there is one trace per signature.
                warnings.simplefilter("ignore")
                eager = EagerNoisePredictor(self.unet())
                trace = torch.jit.trace(eager, inputs, check_trace=False)
                # The first replays also let TorchScript's profiling executor optimise the graph.
                agrees = torch.allclose(trace(*inputs), eager(*inputs), rtol=1e-5, atol=1e-6)
        except Exception as error:  # noqa: BLE001 - any failure means: run eagerly, as before
            log.warning("UNet trace failed (%s: %s); running it eagerly", type(error).__name__, error)
            return EAGER
        if not agrees:
            log.warning("UNet trace disagrees with the eager UNet; running it eagerly")
            return EAGER
        return trace
