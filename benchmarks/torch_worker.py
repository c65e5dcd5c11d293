"""facenet-pytorch's InceptionResnetV1 as a timing worker, run inside ``benchmarks/.venv-torch``.

TensorFlow and PyTorch live in separate virtual environments (each pins its own numpy and
threading runtime), so ``bench_encoder.py`` starts this script once as a subprocess and sends it
one JSON command a line on stdin; it answers one JSON line on stdout. The model is built once and
stays warm, so the parent can interleave TensorFlow and PyTorch repeats call by call.

Commands:
    {"cmd": "load", "inputs": "/path/batch.npy"}   NHWC float32 faces -> builds the model
    {"cmd": "time", "batch": 8, "calls": 4}        runs 4 forward passes of 8 faces, returns seconds
    {"cmd": "quit"}

Random weights are used (speed does not depend on the values); ``pretrained=None`` downloads nothing.
"""

import importlib.util
import json
import sys
import time
import types


def import_inception_resnet_v1():
    """``InceptionResnetV1`` without the package's ``__init__``, which imports torchvision for its
    MTCNN (not needed here, and no torchvision build matches this torch's CPU wheel)."""
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None:
        raise SystemExit("facenet-pytorch is not installed in this venv (see `make bench`).")
    package = types.ModuleType("facenet_pytorch")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["facenet_pytorch"] = package
    from facenet_pytorch.models.inception_resnet_v1 import InceptionResnetV1

    return InceptionResnetV1


def main():
    import numpy as np
    import torch

    InceptionResnetV1 = import_inception_resnet_v1()
    model, inputs = None, None
    for line in sys.stdin:
        request = json.loads(line)
        if request["cmd"] == "load":
            torch.manual_seed(0)
            model = InceptionResnetV1(pretrained=None).eval()
            nhwc = np.load(request["inputs"], allow_pickle=False)
            inputs = torch.from_numpy(np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2)))
            reply = {"torch": torch.__version__, "threads": torch.get_num_threads(),
                     "parameters": sum(p.numel() for p in model.parameters())}
        elif request["cmd"] == "time":
            batch = inputs[:request["batch"]]
            with torch.inference_mode():
                start = time.perf_counter()
                for _ in range(request["calls"]):
                    out = model(batch)
                seconds = time.perf_counter() - start
            reply = {"seconds": seconds, "shape": list(out.shape)}
        elif request["cmd"] == "quit":
            break
        else:
            reply = {"error": f"unknown command {request['cmd']!r}"}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
