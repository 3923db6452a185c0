"""``npu``: PyTorch on a Huawei Ascend NPU through the ``torch_npu`` extension.

``torch_npu`` registers the ``npu`` device with torch when imported. ``probe()``
reports it as not installed when it is not importable, as not built when the
import fails (a torch_npu built for another torch or CANN version), and as
unavailable when ``torch.npu`` sees no device. It never raises.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
from typing import Any

from autoglm_backends.specs import NpuConfig
from autoglm_sdk.plugin import BackendStatus, BuildContext


class NpuBackend:
    name = "npu"
    kind = "backend"
    Config = NpuConfig

    def __init__(self, config: NpuConfig, ctx: BuildContext | None = None) -> None:
        self.config = config

    @property
    def device(self) -> str:
        return f"npu:{self.config.device_index}"

    def probe(self) -> BackendStatus:
        if importlib.util.find_spec("torch") is None:
            return BackendStatus(self.name, False, False, False, reason="torch is not installed")
        if importlib.util.find_spec("torch_npu") is None:
            return BackendStatus(
                self.name,
                False,
                False,
                False,
                reason="torch_npu is not installed (Ascend machines: pip install torch-npu matching "
                "your torch and CANN versions)",
            )
        try:
            importlib.import_module("torch_npu")
            import torch

            npu = torch.npu
        except Exception as exc:  # an ABI or CANN mismatch fails at import
            return BackendStatus(self.name, True, False, False, reason=f"torch_npu does not load: {exc}")
        try:
            count = npu.device_count()
            usable = npu.is_available()
        except Exception as exc:
            return BackendStatus(self.name, True, True, False, reason=f"the Ascend driver failed: {exc}")
        if not usable or count == 0:
            return BackendStatus(
                self.name,
                True,
                True,
                False,
                reason="no Ascend NPU is visible (check the driver and ASCEND_RT_VISIBLE_DEVICES)",
            )
        index = self.config.device_index
        if index >= count:
            return BackendStatus(
                self.name,
                True,
                True,
                False,
                reason=f"device_index {index} asked for, but only {count} NPU(s) are visible",
            )
        capabilities: dict[str, Any] = {"device_count": count, "dtypes": ["float32", "float16", "bfloat16"]}
        with contextlib.suppress(Exception):  # names and memory are informative only
            capabilities["device_name"] = npu.get_device_name(index)
            capabilities["memory_bytes"] = int(npu.get_device_properties(index).total_memory)
        return BackendStatus(self.name, True, True, True, device=self.device, capabilities=capabilities)

    def prepare(self, module: Any) -> Any:
        from autoglm_sdk.plugin import BackendUnavailableError

        status = self.probe()
        if not status.usable:
            raise BackendUnavailableError(f"backend npu: {status.reason}")
        import torch

        torch.npu.set_device(self.config.device_index)
        return module.to(self.device)

    def autocast(self) -> Any:
        if self.config.autocast == "float32":
            return contextlib.nullcontext()
        import torch

        return torch.autocast("npu", dtype=getattr(torch, self.config.autocast))

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "device": self.device, "autocast": self.config.autocast}
