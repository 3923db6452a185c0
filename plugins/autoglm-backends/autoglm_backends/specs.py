"""Specs and configs of the autoglm-backends plugins (light: no torch, no torch_npu)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from autoglm_sdk.protocols import PluginConfig, PluginSpec

Precision = Literal["float32", "float16", "bfloat16"]


class AcceleratorConfig(PluginConfig):
    device_index: int = Field(0, ge=0, le=63, description="Which device of this kind to use (N in cuda:N / npu:N).")
    autocast: Precision = Field(
        "float32",
        description="Forward passes under autocast to this dtype (float32 = no autocast). bfloat16 needs a device "
        "that supports it; the probe says whether this one does.",
    )


class CudaConfig(AcceleratorConfig):
    """An NVIDIA GPU through PyTorch's CUDA build."""

    cudnn_benchmark: bool = Field(
        True, description="Let cuDNN time its kernels for each new input shape and keep the fastest."
    )
    allow_tf32: bool = Field(True, description="Allow TensorFloat-32 matmuls and convolutions on Ampere and newer.")


class NpuConfig(AcceleratorConfig):
    """A Huawei Ascend NPU through the torch_npu extension (installed separately on Ascend machines)."""


cuda = PluginSpec(
    name="cuda",
    kind="backend",
    config=CudaConfig,
    factory="autoglm_backends.cuda:CudaBackend",
    summary="PyTorch on an NVIDIA GPU (device index, fp16/bf16 autocast, cuDNN benchmark, TF32).",
)

npu = PluginSpec(
    name="npu",
    kind="backend",
    config=NpuConfig,
    factory="autoglm_backends.npu:NpuBackend",
    summary="PyTorch on a Huawei Ascend NPU through torch_npu (device npu:N, autocast).",
)
