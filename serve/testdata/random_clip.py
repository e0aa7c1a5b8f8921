# Usage: python3 random_clip.py OUT_DIR RN50 ViT-B-16
#
# Random-weight CLIP checkpoints with the real shapes of OpenAI's RN50 and
# ViT-B/16 (state-dict names of clip/model.py), F16 like the released files.
# A port of clip/model_load_test.go's releasedModel.shapes and
# clip/random_test.go's randomSource scaling, for the serve benchmark of
# docs/benchmarks.md; the weights go outside the repository and are never
# committed.
import sys, numpy as np
import json, struct

def save_file(tensors, path):
    header, offset, blobs = {}, 0, []
    for name, a in tensors.items():
        b = np.ascontiguousarray(a).tobytes()
        header[name] = {"dtype": "F16", "shape": list(a.shape), "data_offsets": [offset, offset+len(b)]}
        offset += len(b); blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h))); f.write(h)
        for b in blobs: f.write(b)

def shapes(embed, res, vlayers, vwidth, patch, tw=512, theads=8, tlayers=12):
    s = {}
    def ln(p, n): s[p+".weight"] = (n,); s[p+".bias"] = (n,)
    def blocks(prefix, layers, w):
        for i in range(layers):
            p = f"{prefix}{i}."
            ln(p+"ln_1", w); ln(p+"ln_2", w)
            s[p+"attn.in_proj_weight"] = (3*w, w); s[p+"attn.in_proj_bias"] = (3*w,)
            s[p+"attn.out_proj.weight"] = (w, w); s[p+"attn.out_proj.bias"] = (w,)
            s[p+"mlp.c_fc.weight"] = (4*w, w); s[p+"mlp.c_fc.bias"] = (4*w,)
            s[p+"mlp.c_proj.weight"] = (w, 4*w); s[p+"mlp.c_proj.bias"] = (w,)
    s["token_embedding.weight"] = (49408, tw); s["positional_embedding"] = (77, tw)
    blocks("transformer.resblocks.", tlayers, tw)
    ln("ln_final", tw)
    s["text_projection"] = (tw, embed); s["logit_scale"] = ()
    w = vwidth
    if len(vlayers) == 1:
        g = res // patch
        s["visual.conv1.weight"] = (w, 3, patch, patch)
        s["visual.class_embedding"] = (w,); s["visual.positional_embedding"] = (g*g+1, w)
        ln("visual.ln_pre", w)
        blocks("visual.transformer.resblocks.", vlayers[0], w)
        ln("visual.ln_post", w)
        s["visual.proj"] = (w, embed)
        return s
    def bn(p, n):
        ln(p, n); s[p+".running_mean"] = (n,); s[p+".running_var"] = (n,)
    def conv(p, o, i, k): s[p] = (o, i, k, k)
    conv("visual.conv1.weight", w//2, 3, 3); bn("visual.bn1", w//2)
    conv("visual.conv2.weight", w//2, w//2, 3); bn("visual.bn2", w//2)
    conv("visual.conv3.weight", w, w//2, 3); bn("visual.bn3", w)
    inp = w
    for stage, n in enumerate(vlayers):
        planes = w << stage
        for j in range(n):
            p = f"visual.layer{stage+1}.{j}."
            conv(p+"conv1.weight", planes, inp, 1); bn(p+"bn1", planes)
            conv(p+"conv2.weight", planes, planes, 3); bn(p+"bn2", planes)
            conv(p+"conv3.weight", 4*planes, planes, 1); bn(p+"bn3", 4*planes)
            if j == 0:
                conv(p+"downsample.0.weight", 4*planes, inp, 1); bn(p+"downsample.1", 4*planes)
            inp = 4*planes
    d, side = 32*w, res//32
    s["visual.attnpool.positional_embedding"] = (side*side+1, d)
    for p in ("q_proj", "k_proj", "v_proj"):
        s[f"visual.attnpool.{p}.weight"] = (d, d); s[f"visual.attnpool.{p}.bias"] = (d,)
    s["visual.attnpool.c_proj.weight"] = (embed, d); s["visual.attnpool.c_proj.bias"] = (embed,)
    return s

def random_weights(sh, seed):
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in sorted(sh.items()):
        n = int(np.prod(shape)) if shape else 1
        scale, offset = 0.02, 0.0
        if name == "logit_scale":
            out[name] = np.array(np.log(100), dtype=np.float16); continue
        if name.endswith("running_var"): scale, offset = 0.1, 1.2
        elif len(shape) == 1 and name.endswith(".weight"): scale, offset = 0.1, 1.0
        elif len(shape) == 4: scale = np.sqrt(2 / (n / shape[0]))
        out[name] = (offset + scale * rng.standard_normal(shape, dtype=np.float32)).astype(np.float16)
    return out

models = {"RN50": shapes(1024, 224, [3, 4, 6, 3], 64, 0), "ViT-B-16": shapes(512, 224, [12], 768, 16)}
out = sys.argv[1]
for name in sys.argv[2:]:
    save_file(random_weights(models[name], 1), f"{out}/{name}.safetensors")
    print("wrote", name)
