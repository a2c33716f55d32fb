"""attncheck.adapters.FlashInfer on the CPU stand-in (test_flashinfer.py)."""

import fake_flashinfer_torch
from attncheck.adapters import FlashInfer


class FlashInferCPU(FlashInfer):
    device = "cpu"

    def _fi(self):
        return fake_flashinfer_torch


flashinfer_cpu = FlashInferCPU("flashinfer_cpu")
flashinfer_cpu_base_e = FlashInferCPU("flashinfer_cpu_base_e")
flashinfer_cpu_base_e.lse_base = "e"
