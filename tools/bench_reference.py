#!/usr/bin/env python3
"""Times the reference NeuroBOLT (soupeeli/NeuroBOLT, Python) the way `neurobolt bench` times ours:
inference windows/s (eval, no autograd) and training windows/s (forward + MSE backward + AdamW),
with peak memory, on CPU or CUDA, fp32 or bf16 autocast. For side-by-side figures in one run.

The reference code is not part of this repository: pass a checkout (--ref-dir, holding models/)
and have einops and linear_attention_transformer (with its dependencies) importable. The
reference takes four helpers from timm (drop_path, to_2tuple, trunc_normal_, register_model);
where timm cannot be imported (it wants torchvision and PIL) equivalent stand-ins are used.

usage: bench_reference.py --ref-dir DIR [--device cuda] [--precision fp32|bf16]
                          [--batch-inference 256] [--batch-training 64] [--iterations 10]
"""
import argparse
import sys
import time
import types


def install_timm_helpers():
    """Installs equivalents of the four timm helpers the reference imports, where timm cannot be
    imported; returns whether it did (False: the real timm is used)."""
    try:
        import timm.models.layers  # noqa: F401
        import timm.models.registry  # noqa: F401
        return False
    except Exception:
        pass
    import collections.abc
    import torch

    registry = {}

    def register_model(fn):
        registry[fn.__name__] = fn
        return fn

    def create_model(name, pretrained=False, **kwargs):
        return registry[name](pretrained=pretrained, **kwargs)

    def drop_path(x, drop_prob=0.0, training=False, scale_by_keep=True):
        if drop_prob == 0.0 or not training:
            return x
        keep = 1 - drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep if scale_by_keep else x * mask

    def to_2tuple(x):
        return tuple(x) if isinstance(x, collections.abc.Iterable) and not isinstance(x, str) else (x, x)

    def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0):
        return torch.nn.init.trunc_normal_(tensor, mean, std, a, b)

    timm = types.ModuleType("timm")
    models = types.ModuleType("timm.models")
    layers = types.ModuleType("timm.models.layers")
    reg = types.ModuleType("timm.models.registry")
    layers.drop_path, layers.to_2tuple, layers.trunc_normal_ = drop_path, to_2tuple, trunc_normal_
    reg.register_model = register_model
    models.layers, models.registry, models.create_model = layers, reg, create_model
    timm.models = models
    for name, module in (("timm", timm), ("timm.models", models), ("timm.models.layers", layers),
                         ("timm.models.registry", reg)):
        sys.modules[name] = module
    return True


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ref-dir", required=True)
    p.add_argument("--device", default="cuda")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--batch-inference", type=int, default=256)
    p.add_argument("--batch-training", type=int, default=64)
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--rois", type=int, default=1)
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args()

    import torch
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    stood_in = install_timm_helpers()
    sys.path.insert(0, a.ref_dir)
    import models.model  # noqa: F401  registers neurobolt_default with timm
    from timm.models import create_model

    device = torch.device(a.device)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    # main.py:get_models() with its default arguments.
    model = create_model("neurobolt_default", EEG_channel=26, num_roi=a.rois, drop_rate=0.1, drop_path_rate=0.1,
                         attn_drop_rate=0.0, drop_block_rate=None, use_mean_pooling=True, init_scale=0.001,
                         use_rel_pos_bias=False, use_abs_pos_emb=True, init_values=0.1, qkv_bias=False).to(device)
    # engine.py: channel rows of the VU montage in LaBraM's standard_1020 list, cls first.
    input_chans = [0, 1, 3, 18, 22, 40, 44, 62, 66, 81, 83, 16, 24, 38, 46, 60, 68, 2, 20, 42, 64, 75, 82, 26, 36,
                   48, 58]
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=a.precision == "bf16")

    def sync():
        if cuda:
            torch.cuda.synchronize()

    def timed(step, n):
        for _ in range(a.warmup):
            step()
        sync()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        for _ in range(a.iterations):
            step()
        sync()
        return (time.perf_counter() - start) / a.iterations

    print(f"reference  neurobolt_default, PyTorch {torch.__version__}, device {device} ({a.precision}), "
          f"{torch.get_num_threads()} threads{' (timm helpers stood in)' if stood_in else ''}")
    x = torch.randn(a.batch_inference, 26, 3200, device=device) * 30.0
    model.eval()

    def infer():
        with torch.no_grad(), autocast:
            model((x.float() / 100).reshape(x.shape[0], 26, 16, 200), input_chans)

    s = timed(infer, a.batch_inference)
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
    print(f"inference  {a.batch_inference / s:.2f} windows/s  ({s:.4f} s/batch of {a.batch_inference})"
          f"  peak GPU memory {peak:.2f} GiB")

    model.train()
    xt = torch.randn(a.batch_training, 26, 3200, device=device) * 30.0
    yt = torch.randn(a.batch_training, a.rois, device=device)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.05)
    loss_fn = torch.nn.MSELoss()

    def train():
        opt.zero_grad(set_to_none=True)
        with autocast:
            out = model((xt.float() / 100).reshape(xt.shape[0], 26, 16, 200), input_chans)
        loss = loss_fn(out.float(), yt)
        loss.backward()
        opt.step()

    s = timed(train, a.batch_training)
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
    print(f"training   {a.batch_training / s:.2f} windows/s  ({s:.4f} s/step of {a.batch_training})"
          f"  peak GPU memory {peak:.2f} GiB")


if __name__ == "__main__":
    main()
