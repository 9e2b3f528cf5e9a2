// Timings read by the tests and shown in the console: Start → paired → first fresh partner frame.
//
// Every method takes `now` (performance.now()) from the caller.

export class Metrics {
  constructor() {
    /** @type {number | null} performance.now() of the last Start click */
    this.startClickedAt = null;
    /** @type {number | null} first `paired` after that click */
    this.pairedAt = null;
    /** @type {number | null} first fresh partner frame after that click */
    this.firstFrameAt = null;
    /** @type {number | null} */
    this.startToFirstFrameMs = null;
    /** @type {number | null} */
    this.lastPairedAt = null;
    /** @type {number | null} */
    this.lastFirstFrameAt = null;
    this.pairings = 0;
  }

  /** @param {number} now */
  started(now) {
    this.startClickedAt = now;
    this.pairedAt = null;
    this.firstFrameAt = null;
    this.startToFirstFrameMs = null;
  }

  /** @param {number} now */
  paired(now) {
    this.pairings += 1;
    this.lastPairedAt = now;
    if (this.pairedAt === null && this.startClickedAt !== null) this.pairedAt = now;
  }

  /** @param {number} now */
  firstFrame(now) {
    if (this.firstFrameAt === null && this.startClickedAt !== null) {
      this.firstFrameAt = now;
      this.startToFirstFrameMs = Math.round(now - this.startClickedAt);
      console.info(`Start → first partner frame: ${this.startToFirstFrameMs} ms`);
    }
    this.lastFirstFrameAt = now;
  }

  /** A plain copy (what `window.sfu.metrics` returns). */
  snapshot() {
    return { ...this };
  }
}
