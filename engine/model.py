"""The Transformer: a GPT-2 style decoder, or the classic encoder-decoder, in one readable file.

Written in the manner of nanoGPT: small modules, a shape comment on every reshape. Shapes use
B = batch, T = decoder (target) length, S = encoder (source) length, C = d_model, nh = heads,
hs = head size (C // nh), V = vocabulary.

Architectures (``ModelConfig.arch``):

- ``decoder``: token + learned position embedding, ``n_layer`` causal blocks, final norm, a head
  (tied to the token embedding when ``tie_weights``).
- ``encoder_decoder``: the same token embedding and position table for source and target; an
  encoder of ``n_layer`` bidirectional blocks; a decoder of ``n_layer`` blocks with causal
  self-attention, cross-attention to the encoder output, and an MLP.

Norm placement (``norm_position``):

- ``pre`` (GPT-2): ``x = x + f(norm(x))`` and a final norm after the last block of each stack,
  since the residual stream itself is never normalised otherwise.
- ``post`` (Vaswani et al. 2017): ``x = norm(x + f(x))``. Each block already ends on a norm, so
  there is no final norm, as in the original.

``norm: none`` puts ``nn.Identity`` wherever a norm would be, so the module tree keeps its shape and
``norm_sites()`` is empty. The loss is the caller's: ``cross_entropy(logits.view(-1, V),
targets.view(-1), ignore_index=-1)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from engine.config import ModelConfig
from engine.norm import Norm, check_backend


def make_norm(cfg: ModelConfig) -> nn.Module:
    """A Norm as the config asks, or nn.Identity for ``norm: none``."""
    if cfg.norm == "none":
        return nn.Identity()
    return Norm(
        cfg.norm,
        cfg.d_model,
        eps=cfg.norm_eps,
        bias=cfg.bias,
        backend=cfg.norm_backend,
        center=cfg.norm_center,
    )


class Attention(nn.Module):
    """Multi-head attention: self-attention when ``memory`` is None, else cross-attention."""

    def __init__(self, cfg: ModelConfig, causal: bool):
        super().__init__()
        self.n_head = cfg.n_head
        self.causal = causal
        self.dropout = cfg.dropout
        # Queries and keys/values are separate projections so the same module serves both self-
        # and cross-attention (in cross-attention they read different sequences).
        self.q = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.kv = nn.Linear(cfg.d_model, 2 * cfg.d_model, bias=cfg.bias)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.resid_drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None = None) -> torch.Tensor:
        B, T, C = x.shape
        memory = x if memory is None else memory
        S = memory.size(1)
        hs = C // self.n_head
        q = self.q(x).view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        k, v = self.kv(memory).split(C, dim=2)  # each (B, S, C)
        k = k.view(B, S, self.n_head, hs).transpose(1, 2)  # (B, nh, S, hs)
        v = v.view(B, S, self.n_head, hs).transpose(1, 2)  # (B, nh, S, hs)
        y = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=self.causal
        )  # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C)
        return self.resid_drop(self.proj(y))


class MLP(nn.Module):
    """Position-wise feed-forward: d_model -> d_ff -> d_model, or SwiGLU."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.activation = cfg.activation
        self.fc = nn.Linear(cfg.d_model, cfg.d_ff, bias=cfg.bias)
        if cfg.activation == "swiglu":
            # SwiGLU (Shazeer 2020): silu(gate(x)) * fc(x); the gate is a second projection.
            self.gate = nn.Linear(cfg.d_model, cfg.d_ff, bias=cfg.bias)
            self.act = nn.SiLU()
        else:
            self.gate = None
            self.act = {"gelu": nn.GELU(), "gelu_tanh": nn.GELU(approximate="tanh"),
                        "relu": nn.ReLU(), "tanh": nn.Tanh(),
                        "sigmoid": nn.Sigmoid()}[cfg.activation]  # fmt: skip
        self.proj = nn.Linear(cfg.d_ff, cfg.d_model, bias=cfg.bias)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gate is not None:
            h = self.act(self.gate(x)) * self.fc(x)  # (B, T, d_ff)
        else:
            h = self.act(self.fc(x))  # (B, T, d_ff)
        return self.drop(self.proj(h))


class Block(nn.Module):
    """One Transformer block: self-attention, optional cross-attention, MLP, each with a norm.

    ``causal`` masks future positions (decoder); ``cross`` adds attention to an encoder output.
    """

    def __init__(self, cfg: ModelConfig, causal: bool, cross: bool):
        super().__init__()
        self.pre = cfg.norm_position == "pre"
        self.ln_attn = make_norm(cfg)
        self.attn = Attention(cfg, causal=causal)
        if cross:
            self.ln_cross = make_norm(cfg)
            self.cross = Attention(cfg, causal=False)
        else:
            self.ln_cross = self.cross = None
        self.ln_mlp = make_norm(cfg)
        self.mlp = MLP(cfg)

    def _residual(self, x: torch.Tensor, norm: nn.Module, f, *args) -> torch.Tensor:
        if self.pre:
            return x + f(norm(x), *args)
        return norm(x + f(x, *args))

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None = None) -> torch.Tensor:
        x = self._residual(x, self.ln_attn, self.attn)
        if self.cross is not None:
            x = self._residual(x, self.ln_cross, self.cross, memory)
        return self._residual(x, self.ln_mlp, self.mlp)


class Transformer(nn.Module):
    """Decoder-only or encoder-decoder Transformer returning logits of shape (B, T, vocab_size)."""

    def __init__(
        self, cfg: ModelConfig, vocab_size: int, n_classes: int = 0, pad_id: int | None = None
    ):
        super().__init__()
        if cfg.head == "classify" and (n_classes < 2 or cfg.arch != "decoder"):
            raise ValueError(
                f"a classification head needs a decoder and >= 2 classes, got {n_classes}"
            )
        if cfg.d_model % cfg.n_head:
            raise ValueError(f"d_model={cfg.d_model} is not divisible by n_head={cfg.n_head}")
        if vocab_size < 1:
            raise ValueError(f"vocab_size must be >= 1, got {vocab_size}")
        self.cfg = cfg
        self.vocab_size = vocab_size
        self.encdec = cfg.arch == "encoder_decoder"
        # Post-LN blocks end on a norm already; a final norm only belongs to pre-LN stacks.
        final_norm = cfg.norm_position == "pre"

        self.embed = nn.Embedding(vocab_size, cfg.d_model)
        # One position table for source and target, as the 2017 model shares its sinusoids.
        self.pos = nn.Embedding(cfg.context, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        if self.encdec:
            self.enc_blocks = nn.ModuleList(
                Block(cfg, causal=False, cross=False) for _ in range(cfg.n_layer)
            )
            self.ln_enc_final = make_norm(cfg) if final_norm else nn.Identity()
        self.blocks = nn.ModuleList(
            Block(cfg, causal=True, cross=self.encdec) for _ in range(cfg.n_layer)
        )
        self.ln_final = make_norm(cfg) if final_norm else nn.Identity()
        self.head = nn.Linear(cfg.d_model, vocab_size, bias=False)
        if cfg.tie_weights:
            self.head.weight = self.embed.weight
        # A classifier on the pooled final hidden state; the LM head stays (a finetune loads it,
        # tied to the embedding it costs nothing) but is unused.
        self.classify = cfg.head == "classify"
        self.pad_id = pad_id  # right padding of variable-length inputs; pooling skips it
        if self.classify:
            self.classifier = nn.Linear(cfg.d_model, n_classes)

        if self.embed.weight.is_meta:  # counting parameters: no values to initialise (fast)
            return
        self.apply(self._init_weights)
        # GPT-2: scale the projections that write into the residual stream by 1/sqrt(number of
        # residual adds), so the stream's variance does not grow with depth at init.
        resid_std = 0.02 / math.sqrt(2 * cfg.n_layer)
        for block in self.all_blocks():
            for sub in (block.attn, block.cross, block.mlp):
                if sub is not None:
                    nn.init.normal_(sub.proj.weight, mean=0.0, std=resid_std)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def all_blocks(self) -> list[Block]:
        """Every block in execution order: encoder blocks (if any), then decoder blocks."""
        enc = list(self.enc_blocks) if self.encdec else []
        return enc + list(self.blocks)

    def _embed(self, idx: torch.Tensor, what: str) -> torch.Tensor:
        if idx.dim() != 2:
            raise ValueError(f"{what} tokens must have shape (B, T); got {tuple(idx.shape)}")
        T = idx.size(1)
        if T > self.cfg.context:
            raise ValueError(
                f"{what} sequence has {T} tokens, longer than the model's context of "
                f"{self.cfg.context}"
            )
        pos = torch.arange(T, device=idx.device)  # (T,)
        return self.drop(self.embed(idx) + self.pos(pos))  # (B, T, C)

    def encode(self, src: torch.Tensor) -> torch.Tensor:
        """Encoder output (B, S, C) for source tokens (B, S); encoder_decoder only."""
        h = self._embed(src, "source")
        for block in self.enc_blocks:
            h = block(h)
        return self.ln_enc_final(h)

    def forward(self, x: torch.Tensor, src: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, T, vocab_size) for decoder tokens x (B, T) int64; with the classification
        head, class logits (B, n_classes).

        ``src`` (B, S) int64 source tokens are required for encoder_decoder and must be None for
        decoder. Raises ValueError for a sequence longer than ``cfg.context``.
        """
        if self.encdec and src is None:
            raise ValueError("an encoder_decoder model needs source tokens: forward(x, src)")
        if not self.encdec and src is not None:
            raise ValueError("a decoder model takes no source tokens: call forward(x)")
        memory = self.encode(src) if self.encdec else None
        h = self._embed(x, "target" if self.encdec else "input")
        for block in self.blocks:
            h = block(h, memory)
        h = self.ln_final(h)  # (B, T, C)
        if self.classify:
            return self.classifier(self.pool(h, x))  # (B, n_classes)
        return self.head(h)  # (B, T, V)

    def pool(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """(B, C): the last real token's hidden state, or the mean over the real tokens.

        Inputs are right-padded with ``pad_id``; attention is causal, so the real tokens never
        see the padding and the result does not depend on how much of it there is.
        """
        if self.pad_id is None:  # fixed-length inputs: every token is real
            return h.mean(1) if self.cfg.pooling == "mean" else h[:, -1]
        real = x != self.pad_id
        if self.cfg.pooling == "mean":
            w = real.unsqueeze(-1).to(h.dtype)  # (B, T, 1)
            return (h * w).sum(1) / w.sum(1).clamp(min=1)
        last = (real.long().sum(1) - 1).clamp(min=0)  # (B,)
        return h[torch.arange(h.size(0), device=h.device), last]

    def norm_sites(self) -> list[tuple[str, Norm]]:
        """Every Norm in execution order, named as the timeline and statistics address them.

        Decoder blocks are ``"<i>.attn"``, ``"<i>.cross"``, ``"<i>.mlp"``; encoder blocks
        ``"enc<i>.attn"``, ``"enc<i>.mlp"``; the final norms ``"enc_final"`` and ``"final"``.
        Empty for ``norm: none``.
        """
        sites: list[tuple[str, nn.Module]] = []
        if self.encdec:
            for i, block in enumerate(self.enc_blocks):
                sites += [(f"enc{i}.attn", block.ln_attn), (f"enc{i}.mlp", block.ln_mlp)]
            sites.append(("enc_final", self.ln_enc_final))
        for i, block in enumerate(self.blocks):
            sites.append((f"{i}.attn", block.ln_attn))
            if block.ln_cross is not None:
                sites.append((f"{i}.cross", block.ln_cross))
            sites.append((f"{i}.mlp", block.ln_mlp))
        sites.append(("final", self.ln_final))
        return [(name, m) for name, m in sites if isinstance(m, Norm)]

    def set_norm_backend(self, backend: str) -> None:
        """Switch every Norm to ``backend`` ("auto", "triton" or "torch")."""
        check_backend(backend)
        for _, norm in self.norm_sites():
            norm.backend = backend


def build_model(
    cfg: ModelConfig, vocab_size: int, n_classes: int = 0, pad_id: int | None = None
) -> Transformer:
    """A freshly initialised Transformer for ``cfg`` with ``vocab_size`` tokens (on the CPU, or on
    the device of an enclosing ``torch.device`` context); ``n_classes`` for a classification head,
    whose pooling skips ``pad_id`` tokens."""
    return Transformer(cfg, vocab_size, n_classes, pad_id)


@torch.no_grad()
def generate(
    model: Transformer,
    idx: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Sample ``max_new_tokens`` tokens after ``idx`` (B, T) int64 from a decoder model.

    The model sees at most its last ``context`` tokens. ``temperature`` divides the logits
    (0 = greedy argmax); ``top_k`` keeps only the k most likely tokens. Dropout is off while
    sampling and the model's train/eval mode is restored afterwards. Returns (B, T + new) int64.
    """
    if model.encdec:
        raise ValueError("generate samples from decoder models; this one is encoder_decoder")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    was_training = model.training
    model.eval()
    try:
        for _ in range(max_new_tokens):
            cond = idx[:, -model.cfg.context :]  # (B, <=context)
            logits = model(cond)[:, -1, :]  # (B, V)
            if temperature == 0:
                nxt = logits.argmax(dim=-1, keepdim=True)  # (B, 1)
            else:
                logits = logits / temperature
                if top_k is not None:
                    kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, [-1]]  # (B, 1)
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                probs = F.softmax(logits, dim=-1)  # (B, V)
                nxt = torch.multinomial(probs, 1, generator=generator)  # (B, 1)
            idx = torch.cat((idx, nxt), dim=1)  # (B, T + 1)
    finally:
        model.train(was_training)
    return idx
