"""Superposition of thousands of doses on a time grid, for a whole population at once.

The grid is cut into blocks (a day by default). The modal state at each block start follows a
short recurrence over blocks; inside a block, every output point is the carried-over state
decaying exactly plus the doses given so far in that block. Dose offsets within a block repeat
(times of day), so the in-block part is one small matrix product. No ODE solver, no loop over
patients, no approximation: the result is exact up to floating point.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from benzotaper.pk.modal import Modal

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

_CHUNK = 128  # patients per work unit
_WORKERS = max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class TimeGrid:
    """Uniform grid: start (h), step (h), n points."""

    start: float
    step: float
    n: int

    def __post_init__(self) -> None:
        if self.step <= 0 or self.n < 1:
            raise ValueError(f"time grid needs a positive step and at least one point (got {self})")

    @property
    def times(self) -> FloatArray:
        """The grid's times in hours."""
        return np.asarray(self.start + self.step * np.arange(self.n), dtype=np.float64)


@dataclass(frozen=True)
class Doses:
    """Dose events for the engine: time (h), amount (mg), depot index (which drug)."""

    time: FloatArray
    amount: FloatArray
    depot: IntArray


def _block_points(grid: TimeGrid) -> int:
    """Points per block: a day when the step divides 24 h, else about 24 points."""
    per_day = 24.0 / grid.step
    if abs(per_day - round(per_day)) < 1e-9 and round(per_day) >= 1:
        return min(round(per_day), grid.n)
    return min(24, grid.n)


def _slots(offsets: FloatArray, depot: IntArray) -> tuple[FloatArray, IntArray, IntArray]:
    """Distinct (offset, depot) pairs: their offsets, depots, and each dose's slot index."""
    key = np.round(offsets, 9) + 1e3 * depot
    uniq, index = np.unique(key, return_inverse=True)
    slot_depot = np.zeros(len(uniq), dtype=np.int64)
    slot_offset = np.zeros(len(uniq))
    slot_depot[index] = depot
    slot_offset[index] = offsets
    return slot_offset, slot_depot, index.astype(np.int64)


def _initial_state(modal: Modal, doses: Doses, t0: float) -> FloatArray:
    """Modal state at t0 from doses given before the grid starts."""
    before = doses.time < t0
    if not np.any(before):
        return np.zeros(modal.lam.shape)
    dt = t0 - doses.time[before]
    decay = np.exp(modal.lam[:, :, None] * dt[None, None, :])  # (n, m, k)
    weights = modal.c[:, :, doses.depot[before]] * doses.amount[before]  # (n, m, k)
    return np.asarray(np.sum(decay * weights, axis=2))


def simulate_grid(modal: Modal, doses: Doses, grid: TimeGrid) -> FloatArray:
    """Concentrations (n, analytes, grid.n) in ng/mL, exact for linear first-order kinetics."""
    n, m = modal.lam.shape
    n_analytes = modal.w.shape[1]
    b_pts = _block_points(grid)
    n_blocks = math.ceil(grid.n / b_pts)
    span = b_pts * grid.step
    inside = (doses.time >= grid.start) & (doses.time < grid.start + n_blocks * span)
    t_in = doses.time[inside] - grid.start
    block = np.minimum(np.floor(t_in / span + 1e-12).astype(np.int64), n_blocks - 1)
    offset = np.maximum(t_in - block * span, 0.0)
    slot_off, slot_dep, slot = _slots(offset, doses.depot[inside])
    amounts = np.zeros((n_blocks, len(slot_off)))
    np.add.at(amounts, (block, slot), doses.amount[inside])

    h = np.arange(b_pts) * grid.step
    lam = modal.lam
    cs = modal.c[:, :, slot_dep]  # (n, m, U)
    delay = h[None, :] - slot_off[:, None]  # (U, B)
    given = delay >= -1e-9
    g = np.exp(lam[:, :, None, None] * np.where(given, delay, 0.0)) * given  # (n, m, U, B)
    g *= cs[:, :, :, None]
    carry_to_end = cs * np.exp(lam[:, :, None] * (span - slot_off)[None, None, :])  # (n, m, U)
    pushes = np.matmul(amounts, carry_to_end.transpose(0, 2, 1))  # (n, blocks, m)
    start_state = np.empty((n, n_blocks, m))
    start_state[:, 0] = _initial_state(modal, doses, grid.start)
    decay_block = np.exp(lam * span)
    for k in range(1, n_blocks):
        start_state[:, k] = decay_block * start_state[:, k - 1] + pushes[:, k - 1]
    e = np.exp(lam[:, :, None] * h[None, None, :])  # (n, m, B)
    out = np.empty((n, n_analytes, n_blocks * b_pts))

    def fill(lo: int, hi: int) -> None:
        """Write patients lo:hi; small chunks keep temporaries in cache and use both cores."""
        for i in range(n_analytes):
            wi = modal.w[lo:hi, i, :]  # (c, m)
            dst = out[lo:hi, i, :].reshape(hi - lo, n_blocks, b_pts)
            np.matmul(start_state[lo:hi], wi[:, :, None] * e[lo:hi], out=dst)
            dst += np.matmul(amounts, np.einsum("nm,nmub->nub", wi, g[lo:hi]))
            np.maximum(dst, 0.0, out=dst)  # exponentials cancel to ~-1e-9 at a dose instant

    in_chunks(n, fill)
    return out[:, :, : grid.n]


def in_chunks(n: int, work: Callable[[int, int], None]) -> None:
    """Run work(lo, hi) over patient chunks on all cores (NumPy releases the GIL)."""
    bounds = [(lo, min(lo + _CHUNK, n)) for lo in range(0, n, _CHUNK)]
    if len(bounds) == 1:
        work(*bounds[0])
        return
    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        list(pool.map(lambda b: work(*b), bounds))


def predose_levels(modal: Modal, doses: Doses) -> tuple[FloatArray, FloatArray]:
    """Exact levels (n, analytes, k) just before each distinct dose time, by a recurrence over doses.

    O(doses) instead of O(doses^2): the modal state is carried from one dose time to the next.
    """
    order = np.argsort(doses.time, kind="stable")
    times, first = np.unique(doses.time[order], return_index=True)
    state = np.zeros(modal.lam.shape)
    levels = np.empty((modal.lam.shape[0], modal.w.shape[1], len(times)))
    bounds = [*first.tolist(), len(order)]
    for k, t in enumerate(times):
        if k:
            state *= np.exp(modal.lam * (t - times[k - 1]))
        levels[:, :, k] = np.einsum("nim,nm->ni", modal.w, state)
        for j in order[bounds[k] : bounds[k + 1]]:
            state += modal.c[:, :, doses.depot[j]] * doses.amount[j]
    return times, np.maximum(levels, 0.0)


def concentrations_at(modal: Modal, doses: Doses, times: FloatArray, include_simultaneous: bool = True) -> FloatArray:
    """Exact concentrations (n, analytes, len(times)) at arbitrary times by direct superposition.

    `include_simultaneous=False` excludes a dose given exactly at the time (a pre-dose trough).
    """
    k = modal.impulse_weights()  # (n, I, m, D)
    out = np.zeros((modal.lam.shape[0], k.shape[1], len(times)))
    for start in range(0, len(times), 256):
        t = np.asarray(times[start : start + 256], dtype=float)
        delay = t[:, None] - doses.time[None, :]  # (T, N)
        given = delay >= 0 if include_simultaneous else delay > 0
        exps = np.exp(modal.lam[:, :, None, None] * np.where(given, delay, 0.0)[None, None])
        exps *= given[None, None] * doses.amount[None, None, None, :]  # (n, m, T, N)
        per_depot = np.zeros((*exps.shape[:3], k.shape[3]))
        for d in range(k.shape[3]):
            per_depot[..., d] = exps[..., doses.depot == d].sum(axis=-1)
        out[:, :, start : start + len(t)] = np.einsum("nimd,nmtd->nit", k, per_depot)
    return np.maximum(out, 0.0)


def levels_at_times(
    modal: Modal, doses: Doses, times: FloatArray, include_simultaneous: bool = True, block_h: float = 24.0
) -> FloatArray:
    """Exact concentrations (n, analytes, len(times)) at arbitrary times, by the block recurrence.

    Same result as `concentrations_at`, but O(blocks + times x dose slots) instead of
    O(times x doses): the modal state is carried day by day, and only the doses of a sample's own
    day are added one by one. Used when many virtual patients are evaluated at a few sample times.
    """
    times = np.asarray(times, dtype=float)
    n, m = modal.lam.shape
    if len(doses.time) == 0 or len(times) == 0:
        return np.zeros((n, modal.w.shape[1], len(times)))
    t0 = math.floor(min(float(doses.time.min()), float(times.min())) / block_h) * block_h
    d_rel = doses.time - t0
    d_blk = np.floor(d_rel / block_h + 1e-12).astype(np.int64)
    n_blocks = int(np.floor((float(times.max()) - t0) / block_h + 1e-12)) + 1
    keep = d_blk < n_blocks
    slot_off, slot_dep, slot = _slots(d_rel[keep] - d_blk[keep] * block_h, doses.depot[keep])
    amounts = np.zeros((n_blocks, len(slot_off)))
    np.add.at(amounts, (d_blk[keep], slot), doses.amount[keep])
    lam = modal.lam
    cs = modal.c[:, :, slot_dep]  # (n, m, U)
    carry = cs * np.exp(lam[:, :, None] * (block_h - slot_off)[None, None, :])
    pushes = np.einsum("bu,nmu->nbm", amounts, carry)  # (n, B, m)
    start = np.zeros((n, n_blocks, m))
    decay = np.exp(lam * block_h)
    for b in range(1, n_blocks):
        start[:, b] = decay * start[:, b - 1] + pushes[:, b - 1]
    t_rel = times - t0
    s_blk = np.minimum(np.floor(t_rel / block_h + 1e-12).astype(np.int64), n_blocks - 1)
    h = t_rel - s_blk * block_h
    state = start[:, s_blk, :] * np.exp(lam[:, None, :] * h[None, :, None])  # (n, T, m)
    delay = h[:, None] - slot_off[None, :]  # (T, U)
    given = delay >= -1e-9 if include_simultaneous else delay > 1e-9
    e = np.exp(lam[:, None, None, :] * np.where(given, delay, 0.0)[None, :, :, None])  # (n, T, U, m)
    weights = amounts[s_blk] * given  # (T, U)
    state += np.einsum("tu,nmu,ntum->ntm", weights, cs, e)
    out = np.einsum("nim,ntm->nit", modal.w, state)
    return np.asarray(np.maximum(out, 0.0), dtype=np.float64)
