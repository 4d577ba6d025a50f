"""Function-preserving initialisation of a child from its parent (Net2Net, network morphism).

``morph(child_spec, parent_spec, mapping, own, parent_state)`` walks the child's
layers in order (``mapping``: ``remap_tb.spec.inherit.layer_mapping``) and keeps,
for the tensor between two layers, how its channels correspond to the parent's
tensor at the same place: ``Sig.cmap[c]`` is the parent channel (or, for a flat
tensor, the parent's flattened index) that child channel ``c`` carries, None for a
new channel whose outgoing weights are zero. Then, per child layer:

- mapped, same type: the parent's tensors copied through the correspondence.
  Widened (more filters/units): the overlapping slice copied, the new units keep
  their random init and the next layer's weights for them are zero (exact).
  Narrowed: the overlapping slice (not exact). A conv kernel k -> k' embedded
  (or cropped) at the offset the paddings call for (exact when both outputs keep
  the parent's size). A dense layer or the classifier whose input image changed
  size: starts fresh (no parent weight belongs to a position of the new grid).
- removed parent layers before a mapped conv/dense/classifier: linear ones
  (dropout, batchnorm, 1x1 conv, dense) are folded into it (exact); any other
  (an activation, a pool, a k>1 conv) makes the child approximate.
- inserted: conv2d with stride 1 -> Dirac kernel (zero bias; exact when the output
  keeps the input's size), dense -> identity, batchnorm -> identity (weight 1,
  bias 0, mean 0, var 1 - eps: exact in eval mode; in training the batch
  statistics apply), dropout -> nothing (exact in eval mode). An inserted
  activation or pool, or a removed one, cannot be preserved: the walk goes on
  and the child is approximate there.
- a layer the parent has no use for (no correspondence, misfit shapes): fresh.

Returns the tensors to write and a report: per child layer with parameters (and
``"classifier"``) "copied" (the parent's tensors as they are), "morphed" or
"fresh", the parent layer each copied/morphed layer came from, a note per morph,
and ``exact``: whether the child computes the parent's function in eval mode.
Graphs (skips, merges) are not walked: ``morph`` returns None and the caller
copies identical layers only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from remap_tb.spec.analysis import check
from remap_tb.spec.schema import Limits, layer_inputs

_NO_CAPS = Limits(max_params=None, max_depth=None)
CLASSIFIER = "classifier"


@dataclass(frozen=True)
class Sig:
    ppos: int  # the parent layer whose output the child tensor corresponds to (-1: the input)
    cmap: tuple  # child channel (flat: index) -> parent channel (flat: flattened index) or None
    flat: bool  # the child tensor is a vector
    exact: bool


def _is_chain(analysis) -> bool:
    return all(layer_inputs(layer, i) == [i - 1] for i, layer in enumerate(analysis.normalised["layers"]))


def _left_pad(layer: dict) -> int:
    padding, k = layer.get("padding", "valid"), layer["kernel_size"]
    if padding == "same":
        return (k - 1) // 2
    if padding == "valid":
        return 0
    return int(padding)


def morph(child_spec: dict, parent_spec: dict, mapping, own: dict, state: dict, generator=None):
    c_an, p_an = check(child_spec, _NO_CAPS), check(parent_spec, _NO_CAPS)
    if not (_is_chain(c_an) and _is_chain(p_an)):
        return None
    C, P = c_an.normalised["layers"], p_an.normalised["layers"]
    c_in = lambda i: tuple(c_an.layers[i].input_shape)  # noqa: E731
    c_out = lambda i: tuple(c_an.layers[i].output_shape)  # noqa: E731
    p_out = lambda i: tuple(p_an.layers[i].output_shape) if i >= 0 else tuple(p_an.input_shape)  # noqa: E731
    p_in = lambda i: p_out(i - 1)  # noqa: E731 (chains)
    updates: dict[str, torch.Tensor] = {}
    report: dict = {"layers": {}, "from": {}, "notes": {}}
    shape0 = tuple(c_an.input_shape)
    sig: Sig | None = Sig(-1, tuple(range(shape0[0])), len(shape0) == 1, tuple(shape0) == tuple(p_an.input_shape))

    def pt(q, name):
        return state.get(f"{q}.{name}")

    def flat_map(s: Sig, child_shape: tuple, parent_shape: tuple):
        """Child flattened index -> parent flattened index (None: new); resample: spatial sizes differ."""
        if len(child_shape) == 1:
            return (list(s.cmap), None) if s.flat or len(parent_shape) == 1 else (None, None)
        if len(parent_shape) == 1:
            return None, None
        hw_c, hw_p = child_shape[1] * child_shape[2], parent_shape[1] * parent_shape[2]
        if child_shape[1:] == parent_shape[1:]:
            return [None if s.cmap[c] is None else s.cmap[c] * hw_p + k
                    for c in range(child_shape[0]) for k in range(hw_c)], None
        return None, "resample"

    def gap_kind(gap):
        kinds = [P[r]["type"] for r in gap]
        if all(k == "dropout" for k in kinds):
            return "none"
        if all(k in ("dropout", "batchnorm", "dense") or (k == "conv2d" and P[r]["kernel_size"] == 1
               and P[r]["stride"] == 1 and _left_pad(P[r]) == 0) for r, k in zip(gap, kinds)):
            return "fold"
        if all(k in ("dropout", "batchnorm", "activation", "maxpool2d", "avgpool2d", "globalavgpool") for k in kinds):
            return "channel"
        return "lost"

    def affine(r):
        """Removed parent layer r as (M [out, in], b [out]) on channels (or flat features)."""
        kind = P[r]["type"]
        if kind == "dropout":
            n = p_out(r)[0]
            return torch.eye(n), torch.zeros(n)
        if kind == "batchnorm":
            eps = 1e-5
            a = pt(r, "weight") / torch.sqrt(pt(r, "running_var") + eps)
            return torch.diag(a), pt(r, "bias") - pt(r, "running_mean") * a
        w, b = pt(r, "weight"), pt(r, "bias")
        M = w.reshape(w.shape[0], -1)
        return M, b if b is not None else torch.zeros(M.shape[0])

    def effective(q, gap, kind):
        """Parent layer q's (weight, bias) as a function of the parent tensor before ``gap``."""
        W = (state[f"{q}.weight"] if q != CLASSIFIER else state["classifier.weight"]).clone().float()
        bkey = f"{q}.bias"
        b = state[bkey].clone().float() if bkey in state else torch.zeros(W.shape[0])
        for r in reversed(list(gap)):
            if P[r]["type"] == "dropout":
                continue
            M, v = affine(r)
            M, v = M.float(), v.float()
            if kind == "conv2d":
                b = b + torch.einsum("ochw,c->o", W, v)
                W = torch.einsum("ochw,cd->odhw", W, M)
            else:
                out_shape = p_out(r)
                spatial = math.prod(out_shape[1:]) if len(out_shape) == 3 and P[r]["type"] != "dense" else 1
                W3 = W.reshape(W.shape[0], -1, spatial)
                b = b + torch.einsum("ock,c->o", W3, v)
                W = torch.einsum("ock,cd->odk", W3, M).reshape(W.shape[0], -1)
        return W, b

    def consume(key, i, q, kind, gap, s: Sig | None, child_shape_in, parent_shape_in):
        """A mapped conv/dense/classifier; returns the new Sig (None: fresh)."""
        own_w = own[f"{key}.weight"]
        gk = "lost" if s is None else gap_kind(gap)
        exact = s is not None and s.exact and gk in ("none", "fold")
        if gk == "fold":
            W, b = effective(q, gap, kind)
            space_shape = p_out(s.ppos)
        else:
            W, b = effective(q, [], kind)
            space_shape = parent_shape_in
        if gk == "lost":  # no correspondence: identity when the counts agree (the first version's copy)
            if kind == "conv2d" and W.shape[1] == own_w.shape[1]:
                s = Sig(q, tuple(range(own_w.shape[1])), False, False)
            elif kind != "conv2d" and tuple(child_shape_in) == tuple(parent_shape_in):
                s = Sig(q, tuple(range(child_shape_in[0])), len(child_shape_in) == 1, False)
            else:
                return None, False
        new_w = own_w.detach().clone().float()
        bias_key = f"{key}.bias"
        new_b = own[bias_key].detach().clone().float() if bias_key in own else None
        n_out = min(new_w.shape[0], W.shape[0])
        notes = []
        if new_w.shape[0] > W.shape[0]:
            notes.append(f"widened {W.shape[0]}->{new_w.shape[0]}")
        elif new_w.shape[0] < W.shape[0]:
            notes.append(f"narrowed {W.shape[0]}->{new_w.shape[0]}")
            exact = False
        if kind == "conv2d":
            k_p, k_c = W.shape[-1], new_w.shape[-1]
            layer_c, layer_p = C[i], P[q]
            off = _left_pad(layer_c) - _left_pad(layer_p)
            if k_p != k_c:
                notes.append(f"kernel {k_p}->{k_c}")
            if not (0 <= off and off + k_p <= k_c) or layer_c["stride"] != layer_p["stride"]:
                exact = False
                off = (k_c - k_p) // 2
            block = torch.zeros(n_out, new_w.shape[1], k_c, k_c)
            lo_c, lo_p = max(off, 0), max(-off, 0)
            span = min(k_c - lo_c, k_p - lo_p)
            covered = set()
            for c, pc in enumerate(s.cmap):
                if pc is not None and pc < W.shape[1]:
                    block[:, c, lo_c:lo_c + span, lo_c:lo_c + span] = W[:n_out, pc, lo_p:lo_p + span, lo_p:lo_p + span]
                    covered.add(pc)
            if span < k_p or len(covered) < W.shape[1]:
                exact = False
            new_w[:n_out] = block
            if c_out(i)[1:] != p_out(q)[1:]:
                exact = False
        else:
            fmap, how = flat_map(s, tuple(child_shape_in), tuple(space_shape))
            if how == "resample":
                # The image's grid changed size: no parent weight belongs to a child position.
                # (Spreading the parent's weights over the new grid was tried and trained worse
                # than a fresh layer in benchmarks/inheritance.py, so the layer starts fresh.)
                return None, False
            if fmap is None:
                return None, False
            cols = torch.zeros(n_out, new_w.shape[1])
            idx = [(j, pj) for j, pj in enumerate(fmap) if pj is not None and pj < W.shape[1]]
            if idx:
                js, pjs = zip(*idx)
                cols[:, list(js)] = W[:n_out][:, list(pjs)]
            if len(set(p for _, p in idx)) < W.shape[1]:
                exact = False
            new_w[:n_out] = cols
        if new_b is not None:
            new_b[:n_out] = b[:n_out]
        elif b[:n_out].abs().max() > 0:
            exact = False
        updates[f"{key}.weight"] = new_w
        if new_b is not None:
            updates[bias_key] = new_b
        copied = (tuple(new_w.shape) == tuple(W.shape) and gk == "none" and not notes
                  and list(s.cmap) == list(range(len(s.cmap))) and torch.equal(new_w, W))
        report["notes"][key] = ", ".join(notes + (["folded removed layers " + ",".join(map(str, gap))] if gk == "fold" and any(P[r]["type"] != "dropout" for r in gap) else []))
        report["from"][key] = q
        report["layers"][key] = "copied" if copied else "morphed"
        flat = kind != "conv2d"
        cmap = tuple(list(range(n_out)) + [None] * (new_w.shape[0] - n_out))
        return Sig(q, cmap, flat, exact), True

    for i, layer in enumerate(C):
        kind, q = layer["type"], mapping[i]
        has_params = kind in ("conv2d", "dense", "batchnorm")
        if q is not None and P[q]["type"] == kind:
            gap = range((sig.ppos if sig is not None else q - 1) + 1, q)
            if kind in ("conv2d", "dense"):
                sig, _ = consume(str(i), i, q, kind, gap, sig, c_in(i), p_in(q))
                if sig is None:
                    report["layers"][str(i)] = "fresh"
                continue
            gk = "lost" if sig is None else gap_kind(gap)
            if gk in ("fold", "lost"):
                if has_params and c_in(i)[0] == p_in(q)[0]:
                    sig = Sig(q, tuple(range(c_in(i)[0])), len(c_in(i)) == 1, False)
                else:
                    sig = None
            elif gk == "channel":
                sig = replace(sig, exact=False)
            if kind == "batchnorm":
                if sig is None:
                    report["layers"][str(i)] = "fresh"
                    continue
                names = ("weight", "bias", "running_mean", "running_var")
                news = {n: own[f"{i}.{n}"].detach().clone().float() for n in names}
                n_p = pt(q, "weight").shape[0]
                for c, pc in enumerate(sig.cmap):
                    if pc is not None and pc < n_p:
                        for n in names:
                            news[n][c] = pt(q, n)[pc]
                for n in names:
                    updates[f"{i}.{n}"] = news[n]
                if f"{q}.num_batches_tracked" in state:
                    updates[f"{i}.num_batches_tracked"] = state[f"{q}.num_batches_tracked"]
                same = list(sig.cmap) == list(range(n_p))
                report["layers"][str(i)] = "copied" if same and gk == "none" else "morphed"
                report["from"][str(i)] = q
                if len({pc for pc in sig.cmap if pc is not None}) < n_p:
                    sig = replace(sig, exact=False)
                sig = replace(sig, ppos=q)
                continue
            if sig is None:
                continue
            if kind == "activation" and layer.get("fn") != P[q].get("fn"):
                sig = replace(sig, exact=False)
            if kind in ("maxpool2d", "avgpool2d") and c_out(i) [1:] != p_out(q)[1:]:
                sig = replace(sig, exact=False)
            sig = replace(sig, ppos=q)
            continue
        # inserted (or replacing a parent layer of another type: that one counts as removed)
        key = str(i)
        if sig is None:
            if has_params:
                report["layers"][key] = "fresh"
            continue
        if kind == "conv2d":
            w = own[f"{key}.weight"].detach().clone().float()
            F, Cc, k = w.shape[0], w.shape[1], w.shape[-1]
            n = min(F, Cc)
            off = _left_pad(layer)
            same_size = c_out(i)[1:] == c_in(i)[1:] and layer["stride"] == 1
            if not same_size or off >= k:
                off = (k - 1) // 2
            w[:n] = 0
            for o in range(n):
                w[o, o, off, off] = 1.0
            updates[f"{key}.weight"] = w
            if f"{key}.bias" in own:
                b = own[f"{key}.bias"].detach().clone().float()
                b[:n] = 0
                updates[f"{key}.bias"] = b
            lost = any(pc is not None for pc in sig.cmap[n:])
            cmap = tuple(list(sig.cmap[:n]) + [None] * (F - n))
            sig = Sig(sig.ppos, cmap, False, sig.exact and same_size and not lost)
            report["layers"][key] = "morphed"
            report["notes"][key] = "inserted: dirac" + ("" if same_size else " (output size changes: a crop)")
        elif kind == "dense":
            fmap, how = flat_map(sig, c_in(i), p_out(sig.ppos))
            if fmap is None:
                report["layers"][key] = "fresh"
                sig = None
                continue
            w = own[f"{key}.weight"].detach().clone().float()
            U, Fin = w.shape
            n = min(U, Fin)
            w[:n] = 0
            w[torch.arange(n), torch.arange(n)] = 1.0
            updates[f"{key}.weight"] = w
            if f"{key}.bias" in own:
                b = own[f"{key}.bias"].detach().clone().float()
                b[:n] = 0
                updates[f"{key}.bias"] = b
            lost = any(pc is not None for pc in fmap[n:])
            sig = Sig(sig.ppos, tuple(list(fmap[:n]) + [None] * (U - n)), True, sig.exact and not lost)
            report["layers"][key] = "morphed"
            report["notes"][key] = "inserted: identity"
        elif kind == "batchnorm":
            ch = own[f"{key}.weight"].shape[0]
            updates[f"{key}.weight"] = torch.ones(ch)
            updates[f"{key}.bias"] = torch.zeros(ch)
            updates[f"{key}.running_mean"] = torch.zeros(ch)
            updates[f"{key}.running_var"] = torch.full((ch,), 1.0 - 1e-5)
            report["layers"][key] = "morphed"
            report["notes"][key] = "inserted: identity (eval mode)"
        elif kind == "dropout":
            pass
        else:  # activation, pools: cannot be preserved
            sig = replace(sig, exact=False)

    # the classifier: a dense layer on the last tensor
    last_c = c_out(len(C) - 1) if C else tuple(c_an.input_shape)
    n_classes = int(c_an.normalised["input"]["num_classes"])
    ok = n_classes == int(p_an.normalised["input"]["num_classes"])
    result = None
    if ok:
        gap = range((sig.ppos if sig is not None else len(P) - 1) + 1, len(P))
        result, _ = consume(CLASSIFIER, len(C), CLASSIFIER, "dense", gap, sig, last_c, p_out(len(P) - 1))
    if result is None:
        report["layers"][CLASSIFIER] = "fresh"
    report["exact"] = bool(result is not None and result.exact)
    return updates, report
