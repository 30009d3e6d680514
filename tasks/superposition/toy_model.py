"""The toy models of docs/superposition.md section 2, many trained at once as one batched module.

Every parameter has a leading "model" axis of size N, so a whole sweep (densities x seeds) is one
set of einsums. Expert e of model n: W[n, e] (features x hidden), output bias b[n, e]:

    reference hidden form ("linear", tied weights):  x_hat_e = ReLU(W_e W_e^T x + b_e)
    ReLU hidden units ("relu", MoE-X's experts):     x_hat_e = ReLU(W_e ReLU(W_e^T x) + b_e)

mixed by top-k routing weights: a learned linear router (softmax, top-k, renormalised over the
chosen k, as the reference), optionally with the Switch load-balancing loss, or MoE-X's
sparsity-aware router (docs/moex.md section 3.3: no router matrix; -erf of each expert's expected
pre-activation z-score from the column statistics of its encoder W_e^T, softmax over the top-k).
The reference decodes every input with every expert and weights the unchosen ones 0
(`forward_every_expert`, kept as the straightforward version the tests compare against). `forward`
decodes only the k chosen experts, in one batched matrix product per model: each chosen expert's
hidden code is placed in a one-hot slot of the concatenated decoder [W_1 .. W_E | b], so no
per-expert padding is needed however unevenly the router spreads the inputs. The product does more
multiply-adds than the every-expert form (the zero slots; 10x at E=20, m=1, k=5), but it never
builds the (N, E, B, n) tensor of every expert's output, whose memory traffic dominated: 3.5-6.5x
faster per step at the reference's shapes.

At the `paper` preset's shapes (150 models x 1,024 inputs x 100 features) each temporary of a step
is 60-300 MB, and a fresh one costs more in page faults than the arithmetic that fills it (glibc hands
blocks this large back to the kernel on free, which zeroes every page again on first touch). So the
decoder after the hidden code (product, bias, ReLU, the mix over the k chosen experts) is one autograd
function with a hand-written backward that repeats autograd's own operations in the same order, and
a training loop can pass a `Scratch` whose tensors are reused from step to step: the same trained
weights, bit for bit, with the fused loss 1.7-4.5x faster per step (perf/superposition.py).
`forward_unfused` keeps the plain autograd form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

HIDDEN_FORMS = ("linear", "relu")
ROUTERS = ("learned", "switch", "sparsity")


@dataclass(frozen=True)
class ToySpec:
    n_features: int
    n_experts: int
    d_expert: int          # hidden units per expert (m)
    top_k: int
    hidden: str = "linear"
    router: str = "learned"
    aux_loss_coef: float = 0.0
    stat_eps: float = 1e-6

    def __post_init__(self):
        if not 1 <= self.top_k <= self.n_experts:
            raise ValueError(f"top_k must be between 1 and n_experts ({self.n_experts}), got {self.top_k}")
        if self.hidden not in HIDDEN_FORMS:
            raise ValueError(f"hidden form {self.hidden!r} unknown; choose one of {', '.join(HIDDEN_FORMS)}")
        if self.router not in ROUTERS:
            raise ValueError(f"router {self.router!r} unknown; choose one of {', '.join(ROUTERS)}")
        if self.aux_loss_coef and self.router == "sparsity":  # would train without it, silently
            raise ValueError(f"aux_loss_coef {self.aux_loss_coef} is a load-balancing loss over router "
                             "probabilities, which the toy's sparsity router does not compute (use aux_loss_coef 0)")

    @property
    def network_sparsity(self) -> float:
        """1 - active experts / experts (0 for a dense model)."""
        return 1.0 - self.top_k / self.n_experts


class Scratch:
    """Work tensors reused from one training step to the next (see the module docstring: fresh ones
    this large cost more in page faults than their arithmetic). A tensor handed out in one step is
    overwritten in the next, so each step's backward must run before the next step's forward; call
    `next_step` between steps. Asking twice for one name within a step, or a backward after its
    tensors were handed out again, raises instead of giving wrong gradients."""

    def __init__(self):
        self._tensors, self._taken, self.step = {}, set(), 0

    def tensor(self, name: str, shape: tuple, like: torch.Tensor) -> torch.Tensor:
        if name in self._taken:
            raise RuntimeError(f"scratch tensor {name!r} asked for twice in one step: run the backward and "
                               f"call next_step() first")
        self._taken.add(name)
        t = self._tensors.get(name)
        if t is None or t.shape != torch.Size(shape) or (t.dtype, t.device) != (like.dtype, like.device):
            t = self._tensors[name] = like.new_empty(shape)
        return t

    def next_step(self) -> None:
        self._taken.clear()
        self.step += 1

    def check(self, step: int) -> None:
        if step != self.step:
            raise RuntimeError("backward after this step's scratch tensors were reused by a later step")


def work_tensor(scratch: Scratch | None, name: str, shape: tuple, like: torch.Tensor) -> torch.Tensor:
    """A reused tensor from `scratch`, or a fresh one without; of `like`'s dtype and device."""
    return like.new_empty(shape) if scratch is None else scratch.tensor(name, shape, like)


def scratch_step(scratch: Scratch | None) -> int:
    """The step a fused function's forward ran in, for `check_scratch` in its backward."""
    return 0 if scratch is None else scratch.step


def check_scratch(scratch: Scratch | None, step: int) -> None:
    if scratch is not None:
        scratch.check(step)


class _DenseDecode(torch.autograd.Function):
    """A dense model's decoder, ReLU(hidden W^T + b): hidden (N, 1, B, m), W (N, 1, n, m), b (N, 1, n)
    -> (N, B, n). Forward: `forward_every_expert`'s operations; backward: autograd's formulas for
    them. So the values are bit for bit that form's with its one expert, whose routing weight is
    exactly 1 (the product by it and the sum over one expert are skipped: both exact)."""

    @staticmethod
    def forward(ctx, hidden, W, b, scratch):
        N, _, B, _ = hidden.shape
        out = work_tensor(scratch, "dense_out", (N, 1, B, W.shape[2]), hidden)
        out = torch.matmul(hidden, W.transpose(-1, -2), out=out)
        out.add_(b[:, :, None]).relu_()
        ctx.save_for_backward(hidden, W)
        ctx.out, ctx.scratch, ctx.step = out, scratch, scratch_step(scratch)
        return out[:, 0]

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        check_scratch(ctx.scratch, ctx.step)
        hidden, W = ctx.saved_tensors
        N, _, B, n = ctx.out.shape
        # ReLU's backward into its own tensor: `out` is the returned x_hat, which callers may still read.
        g = torch.ops.aten.threshold_backward.grad_input(
            grad[:, None], ctx.out, 0.0, grad_input=work_tensor(ctx.scratch, "dense_grad", ctx.out.shape, grad))
        grad_b = g.sum(2, keepdim=True)[:, :, 0]                           # the broadcast bias add's backward
        # matmul's batched backward: (N, B, m) @ (N, m, n) as one bmm.
        g3, h3 = g.view(N, B, n), hidden.view(N, B, -1)
        grad_hidden = g3.bmm(W.view(N, n, -1)).view(hidden.shape)
        grad_W = h3.transpose(1, 2).bmm(g3).transpose(1, 2).view(W.shape)
        return grad_hidden, grad_W, grad_b, None


class _ChosenDecode(torch.autograd.Function):
    """The MoE decoder of `forward_unfused` after the chosen codes: each chosen expert's code put in
    its one-hot slot, times the stacked decoder, ReLU, mixed over the k chosen experts by their
    routing weights. code (N, B, k, m + 1), top (N, B, k), decoder (N, E (m + 1), n), weights of the
    chosen (N, B, k) -> (N, B, n). Same operations in the same order (backward: autograd's formulas
    for scatter, bmm, ReLU, the product and the sum), but into reused tensors: the (N, B, k, n)
    outputs are the largest tensors of a step (300 MB at the paper's E=20, k=5)."""

    @staticmethod
    def forward(ctx, code, top, decoder, weights, scratch):
        N, B, k, m1 = code.shape
        idx = top[..., None, None].expand(N, B, k, 1, m1)
        slots = work_tensor(scratch, "slots", (N, B, k, decoder.shape[1] // m1, m1), code).zero_()
        slots = slots.scatter_(3, idx, code[:, :, :, None, :]).view(N, B * k, -1)
        out = torch.bmm(slots, decoder, out=work_tensor(scratch, "outputs", (N, B * k, decoder.shape[2]), decoder))
        out = out.relu_().view(N, B, k, -1)
        mixed = torch.mul(out, weights[..., None], out=work_tensor(scratch, "mixed", out.shape, out))
        ctx.save_for_backward(idx, decoder, weights)
        ctx.slots, ctx.out, ctx.mixed = slots, out, mixed
        ctx.scratch, ctx.step = scratch, scratch_step(scratch)
        return mixed.sum(2)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        check_scratch(ctx.scratch, ctx.step)
        idx, decoder, weights = ctx.saved_tensors
        out, buf = ctx.out, ctx.mixed                                      # `mixed` is free again: reuse it
        N, B, k, n = out.shape
        g = grad[:, :, None, :].expand(N, B, k, n)                         # the sum over k's backward
        grad_weights = torch.mul(g, out, out=buf).sum(-1, keepdim=True)[..., 0]
        g = torch.mul(g, weights[..., None], out=buf)
        g = torch.ops.aten.threshold_backward.grad_input(g, out, 0.0, grad_input=buf).view(N, B * k, n)
        grad_decoder = ctx.slots.transpose(1, 2).bmm(g)
        grad_slots = work_tensor(ctx.scratch, "grad_slots", ctx.slots.shape, grad)
        grad_slots = torch.bmm(g, decoder.transpose(1, 2), out=grad_slots)
        grad_code = grad_slots.view(idx.shape[:3] + (-1, idx.shape[4])).gather(3, idx)[:, :, :, 0]
        return grad_code, None, grad_decoder, grad_weights, None


class ToyModels(nn.Module):
    def __init__(self, spec: ToySpec, n_models: int, generator: torch.Generator, gate_init: str = "xavier"):
        super().__init__()
        self.spec = spec
        s = spec
        self.W = nn.Parameter(_xavier((n_models, s.n_experts, s.n_features, s.d_expert), generator))
        # The reference Xavier-initialises the output bias too (a (E, n) matrix), not zeros.
        self.b = nn.Parameter(_xavier((n_models, s.n_experts, s.n_features), generator))
        self.gate = None
        if s.router != "sparsity" and s.n_experts > 1:
            gate = _xavier((n_models, s.n_experts, s.n_features), generator)
            if gate_init == "khot":
                gate = k_hot_gate(n_models, s.n_experts, s.n_features, generator)
            elif gate_init != "xavier":
                raise ValueError(f"gate_init {gate_init!r} unknown; choose xavier or khot")
            self.gate = nn.Parameter(gate)

    def router_scores(self, x: torch.Tensor) -> torch.Tensor:
        """(N, B, n) -> (N, B, E); larger = more wanted."""
        if self.gate is not None:
            return torch.einsum("nbf,nef->nbe", x, self.gate)
        mu = self.W.mean(-1)                             # (N, E, n): mean over each expert's hidden units
        var = self.W.var(-1, unbiased=False)
        mu_h = torch.einsum("nbf,nef->nbe", x, mu)       # no encoder bias in the toy experts
        sigma_h = torch.sqrt(torch.einsum("nbf,nef->nbe", x * x, var) + self.spec.stat_eps)
        return -torch.erf(mu_h / (math.sqrt(2.0) * sigma_h))

    def routing(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mixing weights (N, B, E), k non-zero and summing to 1; the chosen experts (N, B, k); and
        the auxiliary loss (N,)."""
        s = self.spec
        if s.n_experts == 1:
            ones = torch.ones(*x.shape[:2], 1, dtype=x.dtype)
            return ones, torch.zeros(*x.shape[:2], 1, dtype=torch.long), torch.zeros(x.shape[0])
        scores = self.router_scores(x)
        top = scores.topk(s.top_k, dim=-1).indices
        chosen = torch.zeros_like(scores).scatter(-1, top, 1.0)
        if s.router == "sparsity":
            # softmax over the top-k scores only
            weights = torch.where(chosen.bool(), scores, torch.full_like(scores, -torch.inf)).softmax(-1)
            return weights, top, torch.zeros(x.shape[0])
        probs = scores.softmax(-1)
        weights = probs * chosen / (probs * chosen).sum(-1, keepdim=True)
        aux = torch.zeros(x.shape[0])
        if s.aux_loss_coef:
            # Switch: alpha * E * sum_e (share of inputs sent to e) * (mean router probability of e)
            aux = s.aux_loss_coef * s.n_experts * (chosen.mean(1) * probs.mean(1)).sum(-1)
        return weights, top, aux

    def forward(self, x: torch.Tensor,
                scratch: Scratch | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (N, B, n) -> (x_hat (N, B, n), routing weights (N, B, E), auxiliary loss (N,)); the same
        values as `forward_unfused`. With a `scratch`, the decoder's work tensors are reused: finish
        this call's backward before the next call with the same scratch, which may overwrite this
        call's x_hat (a dense model's is one of those tensors)."""
        if self.spec.n_experts == 1:
            weights, _, aux = self.routing(x)
            hidden = torch.einsum("nbf,nefh->nebh", x, self.W)             # as forward_every_expert
            if self.spec.hidden == "relu":
                hidden = F.relu(hidden)
            return _DenseDecode.apply(hidden, self.W, self.b, scratch), weights, aux
        weights, top, aux = self.routing(x)
        code = self._chosen_code(x, top)
        x_hat = _ChosenDecode.apply(code, top, self._decoder(), weights.gather(2, top), scratch)
        return x_hat, weights, aux

    def _chosen_code(self, x: torch.Tensor, top: torch.Tensor) -> torch.Tensor:
        """The k chosen experts' hidden codes with a constant 1 appended (the channel that picks up
        b_e in the decoder): (N, B, k, m + 1)."""
        (N, B, _), (m, k) = x.shape, (self.spec.d_expert, self.spec.top_k)
        hidden = torch.einsum("nbf,nefh->nbeh", x, self.W)                 # (N, B, E, m): cheap, m is small
        if self.spec.hidden == "relu":
            hidden = F.relu(hidden)
        chosen = hidden.gather(2, top[..., None].expand(N, B, k, m))       # (N, B, k, m)
        return torch.cat([chosen, chosen.new_ones(N, B, k, 1)], -1)

    def _decoder(self) -> torch.Tensor:
        """Every expert's [W_e | b_e] stacked: (N, E * (m + 1), n)."""
        N, E, m = self.W.shape[0], self.spec.n_experts, self.spec.d_expert
        return torch.cat([self.W, self.b[..., None]], -1).transpose(-1, -2).reshape(N, E * (m + 1), -1)

    def forward_unfused(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`forward` in plain autograd operations, as it was before the fused decoder (the tests
        compare the two; perf/superposition.py times them)."""
        if self.spec.n_experts == 1:
            return self.forward_every_expert(x)
        weights, top, aux = self.routing(x)
        (N, B, _), (E, m, k) = x.shape, (self.spec.n_experts, self.spec.d_expert, self.spec.top_k)
        code = self._chosen_code(x, top)
        slots = code.new_zeros(N, B, k, E, m + 1).scatter(
            3, top[..., None, None].expand(N, B, k, 1, m + 1), code[:, :, :, None, :])
        outputs = F.relu(torch.bmm(slots.view(N, B * k, E * (m + 1)), self._decoder())).view(N, B, k, -1)
        return (outputs * weights.gather(2, top)[..., None]).sum(2), weights, aux

    def forward_every_expert(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The reference's form of `forward`: every expert decodes every input."""
        weights, _, aux = self.routing(x)
        hidden = torch.einsum("nbf,nefh->nebh", x, self.W)                 # (N, E, B, m), contiguous per expert
        if self.spec.hidden == "relu":
            hidden = F.relu(hidden)
        outputs = F.relu(hidden @ self.W.transpose(-1, -2) + self.b[:, :, None])   # (N, E, B, n)
        return (outputs * weights.transpose(1, 2)[..., None]).sum(1), weights, aux


def _xavier(shape: tuple, generator: torch.Generator) -> torch.Tensor:
    """Xavier-normal over the last two axes, as torch's xavier_normal_ on each (rows, cols) matrix;
    for a 3-D (N, E, n) tensor the reference's init of an (E, n) matrix per model."""
    fan_out, fan_in = shape[-2], shape[-1]
    if len(shape) == 4:  # (N, E, n, m): torch treats (E, n, m) as E x n "channels" of m -> fans n*m, E*m
        fan_in, fan_out = shape[-2] * shape[-1], shape[-3] * shape[-1]
    std = math.sqrt(2.0 / (fan_in + fan_out))
    return torch.randn(shape, generator=generator) * std


def k_hot_gate(n_models: int, n_experts: int, n_features: int, generator: torch.Generator) -> torch.Tensor:
    """The reference's "k-hot" gate: features shuffled and split evenly over the experts; expert e's
    gate row is 1 on its features and 0 elsewhere."""
    if n_features % n_experts:
        raise ValueError(f"k-hot gate init needs n_features ({n_features}) divisible by n_experts ({n_experts})")
    gate = torch.zeros(n_models, n_experts, n_features)
    for n in range(n_models):
        order = torch.randperm(n_features, generator=generator).view(n_experts, -1)
        for e in range(n_experts):
            gate[n, e, order[e]] = 1.0
    return gate


def sample_features(n_models: int, batch: int, n_features: int, density: torch.Tensor, generator: torch.Generator):
    """x (N, B, n): each feature present with probability density[model], value U[0, 1] when present."""
    values = torch.rand(n_models, batch, n_features, generator=generator)
    present = torch.rand(n_models, batch, n_features, generator=generator) <= density.view(-1, 1, 1)
    return torch.where(present, values, torch.zeros(()))


class FeatureSampler:
    """`sample_features` for a training loop: the same draws from the same generator, into tensors
    reused from call to call, so each x returned is overwritten by the next call.

    one_draw=True (opt-in; a different random stream, so different trained models from the same
    seed) draws one uniform u per entry instead of two: present when u < d, value u / d. Given
    u < d, u is uniform on [0, d), so u / d is uniform on [0, 1): the same distribution, at half the
    generator's work (the largest cost of a fused step after the matrix products). Strict < keeps
    d = 0 never present and d = 1 always present with value u; a model of density 0 divides by 1
    instead, so no 0 / 0 reaches its (all-absent) inputs."""

    def __init__(self, n_models: int, batch: int, n_features: int, density: torch.Tensor,
                 generator: torch.Generator, one_draw: bool = False):
        shape = (n_models, batch, n_features)
        self.density, self.generator, self.one_draw = density.view(-1, 1, 1), generator, one_draw
        self.divisor = torch.where(self.density > 0, self.density, self.density.new_ones(()))
        self.x, self.present = self.density.new_empty(shape), self.density.new_empty(shape)

    def __call__(self) -> torch.Tensor:
        # Masks as 1.0 / 0.0 floats and a product: masked_fill_ or a bool operand is 5-7x slower here.
        if self.one_draw:
            u = torch.rand(self.x.shape, generator=self.generator, out=self.x)
            present = torch.lt(u, self.density, out=self.present)
            return u.div_(self.divisor).mul_(present)
        values = torch.rand(self.x.shape, generator=self.generator, out=self.x)
        present = torch.rand(self.x.shape, generator=self.generator, out=self.present).le_(self.density)
        # values >= 0, so values * 1.0 and values * 0.0 are exactly torch.where's two choices.
        return values.mul_(present)
