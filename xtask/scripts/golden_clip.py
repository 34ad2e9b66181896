#!/usr/bin/python3
"""A tiny randomly initialised CLIP image tower and its reference outputs, for
crates/conad-models/tests/clip.rs.

Run from the repository root with Debian's Python (torch 1.13):

    /usr/bin/python3 xtask/scripts/golden_clip.py

Writes fixtures/models/clip-tiny/{model.safetensors, config.json, missing.safetensors,
golden.json}. The weights use Hugging Face's CLIPModel parameter names (vision tower and
visual_projection only); the reference forward pass is written here from the architecture of
transformers' modeling_clip.py (CLIPVisionEmbeddings, pre_layrnorm, CLIPEncoderLayer with
quick_gelu, post_layernorm on the class token, visual_projection), in float64.
`missing.safetensors` lacks the class embedding (a typed error, not a random draw).
"""
import json
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "fixtures", "models", "clip-tiny")
torch.set_default_dtype(torch.float64)
CFG = dict(hidden_size=32, intermediate_size=64, num_attention_heads=4, num_hidden_layers=2,
           patch_size=8, image_size=32, projection_dim=16, hidden_act="quick_gelu")


def save_safetensors(path, tensors):
    """The safetensors layout: u64 header length, JSON header, raw little-endian f32 data."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        data = t.to(torch.float32).numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def weights(g):
    d, i, p, s = CFG["hidden_size"], CFG["intermediate_size"], CFG["patch_size"], CFG["image_size"]
    r = lambda *shape, scale=0.2: torch.randn(*shape, generator=g) * scale
    w = {
        "vision_model.embeddings.class_embedding": r(d),
        "vision_model.embeddings.patch_embedding.weight": r(d, 3, p, p, scale=0.05),
        "vision_model.embeddings.position_embedding.weight": r((s // p) ** 2 + 1, d),
        "vision_model.pre_layrnorm.weight": 1 + r(d, scale=0.1),
        "vision_model.pre_layrnorm.bias": r(d, scale=0.1),
        "vision_model.post_layernorm.weight": 1 + r(d, scale=0.1),
        "vision_model.post_layernorm.bias": r(d, scale=0.1),
        "visual_projection.weight": r(CFG["projection_dim"], d),
    }
    for l in range(CFG["num_hidden_layers"]):
        p_ = f"vision_model.encoder.layers.{l}."
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            w[p_ + f"self_attn.{proj}.weight"] = r(d, d)
            w[p_ + f"self_attn.{proj}.bias"] = r(d, scale=0.05)
        for norm in ("layer_norm1", "layer_norm2"):
            w[p_ + f"{norm}.weight"] = 1 + r(d, scale=0.1)
            w[p_ + f"{norm}.bias"] = r(d, scale=0.1)
        w[p_ + "mlp.fc1.weight"] = r(i, d)
        w[p_ + "mlp.fc1.bias"] = r(i, scale=0.05)
        w[p_ + "mlp.fc2.weight"] = r(d, i)
        w[p_ + "mlp.fc2.bias"] = r(d, scale=0.05)
    # The file holds f32: compute the reference from the same rounded values.
    return {k: v.to(torch.float32).to(torch.float64) for k, v in w.items()}


def forward(w, x):
    d, heads, p = CFG["hidden_size"], CFG["num_attention_heads"], CFG["patch_size"]
    hd = d // heads
    n = x.shape[0]
    patches = F.conv2d(x, w["vision_model.embeddings.patch_embedding.weight"], stride=p)
    patches = patches.flatten(2).transpose(1, 2)
    cls = w["vision_model.embeddings.class_embedding"].expand(n, 1, d)
    h = torch.cat([cls, patches], 1) + w["vision_model.embeddings.position_embedding.weight"][None]
    ln = lambda t, name: F.layer_norm(t, (d,), w[name + ".weight"], w[name + ".bias"], 1e-5)
    lin = lambda t, name: t @ w[name + ".weight"].T + w[name + ".bias"]
    h = ln(h, "vision_model.pre_layrnorm")
    for l in range(CFG["num_hidden_layers"]):
        p_ = f"vision_model.encoder.layers.{l}."
        r = h
        h = ln(h, p_ + "layer_norm1")
        t = h.shape[1]
        q = (lin(h, p_ + "self_attn.q_proj") * hd ** -0.5).view(n, t, heads, hd).transpose(1, 2)
        k = lin(h, p_ + "self_attn.k_proj").view(n, t, heads, hd).transpose(1, 2)
        v = lin(h, p_ + "self_attn.v_proj").view(n, t, heads, hd).transpose(1, 2)
        a = torch.softmax(q @ k.transpose(-1, -2), -1) @ v
        h = r + lin(a.transpose(1, 2).reshape(n, t, d), p_ + "self_attn.out_proj")
        r = h
        h = ln(h, p_ + "layer_norm2")
        h = lin(h, p_ + "mlp.fc1")
        h = h * torch.sigmoid(1.702 * h)
        h = r + lin(h, p_ + "mlp.fc2")
    pooled = ln(h[:, 0], "vision_model.post_layernorm")
    return pooled @ w["visual_projection.weight"].T


def main():
    os.makedirs(OUT, exist_ok=True)
    g = torch.Generator().manual_seed(20261206)
    w = weights(g)
    save_safetensors(os.path.join(OUT, "model.safetensors"), w)
    save_safetensors(os.path.join(OUT, "missing.safetensors"),
                     {k: v for k, v in w.items() if k != "vision_model.embeddings.class_embedding"})
    with open(os.path.join(OUT, "config.json"), "w") as f:
        json.dump({"projection_dim": CFG["projection_dim"],
                   "vision_config": {k: v for k, v in CFG.items() if k != "projection_dim"}}, f, indent=2)
        f.write("\n")
    s = CFG["image_size"]
    x = torch.randn(3, 3, s, s, generator=g).to(torch.float32).to(torch.float64)
    y = forward(w, x)
    with open(os.path.join(OUT, "golden.json"), "w") as f:
        json.dump({"input_shape": list(x.shape), "input": x.flatten().tolist(),
                   "output_shape": list(y.shape), "output": y.flatten().tolist()}, f)
        f.write("\n")
    print("wrote", sorted(os.listdir(OUT)))


if __name__ == "__main__":
    main()
