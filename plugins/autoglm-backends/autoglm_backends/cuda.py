"""``cuda``: PyTorch on an NVIDIA GPU.

``probe()`` separates the three ways a machine can lack CUDA: torch not
importable (installed), a CPU-only torch build (built: ``torch.version.cuda``
is None), and no visible device or too few of them (available). It never
raises: a broken driver shows up as an unavailable device with the driver's
message as the reason.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from typing import Any

from autoglm_backends.specs import CudaConfig
from autoglm_sdk.plugin import BackendStatus, BuildContext

DTYPES = {"float16": "float16", "bfloat16": "bfloat16"}


class CudaBackend:
    name = "cuda"
    kind = "backend"
    Config = CudaConfig

    def __init__(self, config: CudaConfig, ctx: BuildContext | None = None) -> None:
        self.config = config

    @property
    def device(self) -> str:
        # under torchrun each local rank takes its own GPU, counted from device_index
        return f"cuda:{self.config.device_index + int(os.environ.get('LOCAL_RANK', 0))}"

    def probe(self) -> BackendStatus:
        if importlib.util.find_spec("torch") is None:
            return BackendStatus(self.name, False, False, False, reason="torch is not installed")
        import torch

        if not torch.backends.cuda.is_built() or torch.version.cuda is None:
            return BackendStatus(
                self.name,
                True,
                False,
                False,
                reason=f"this torch ({torch.__version__}) was built without CUDA; install a CUDA "
                "build of torch to use a GPU",
            )
        try:
            count = torch.cuda.device_count()
            usable = torch.cuda.is_available()
        except Exception as exc:  # a broken driver raises from inside torch's lazy init
            return BackendStatus(self.name, True, True, False, reason=f"the CUDA driver failed: {exc}")
        if not usable or count == 0:
            return BackendStatus(
                self.name,
                True,
                True,
                False,
                reason=f"no CUDA device is visible (torch {torch.__version__}, CUDA "
                f"{torch.version.cuda}; check the driver and CUDA_VISIBLE_DEVICES)",
            )
        index = int(self.device.split(":")[1])
        if index >= count:
            return BackendStatus(
                self.name,
                True,
                True,
                False,
                reason=f"device_index {index} asked for, but only {count} CUDA device(s) are visible",
            )
        return BackendStatus(
            self.name, True, True, True, device=self.device, capabilities=self._capabilities(torch, index)
        )

    @staticmethod
    def _capabilities(torch: Any, index: int) -> dict[str, Any]:
        props = torch.cuda.get_device_properties(index)
        bf16 = bool(torch.cuda.is_bf16_supported())
        free, total = torch.cuda.mem_get_info(index)
        return {
            "device_name": props.name,
            "compute_capability": f"{props.major}.{props.minor}",
            "memory_bytes": int(total),
            "free_memory_bytes": int(free),
            "multiprocessors": props.multi_processor_count,
            "dtypes": ["float32", "float16", *(["bfloat16"] if bf16 else [])],
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
        }

    def prepare(self, module: Any) -> Any:
        import torch

        from autoglm_sdk.plugin import BackendUnavailableError

        status = self.probe()
        if not status.usable:
            raise BackendUnavailableError(f"backend cuda: {status.reason}")
        if self.config.autocast == "bfloat16" and "bfloat16" not in status.capabilities["dtypes"]:
            raise BackendUnavailableError(
                f"backend cuda: {status.capabilities['device_name']} does not support bfloat16",
                hint='set autocast = "float16" or "float32"',
            )
        torch.backends.cudnn.benchmark = self.config.cudnn_benchmark
        torch.backends.cuda.matmul.allow_tf32 = self.config.allow_tf32
        torch.backends.cudnn.allow_tf32 = self.config.allow_tf32
        torch.cuda.set_device(self.device)
        return module.to(self.device)

    def autocast(self) -> Any:
        if self.config.autocast == "float32":
            return contextlib.nullcontext()
        import torch

        return torch.autocast("cuda", dtype=getattr(torch, self.config.autocast))

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "device": self.device,
            "autocast": self.config.autocast,
            "cudnn_benchmark": self.config.cudnn_benchmark,
            "allow_tf32": self.config.allow_tf32,
        }
