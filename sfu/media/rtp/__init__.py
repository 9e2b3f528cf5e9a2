"""Packet-level RTP logic with no aiortc import: header views, per-stream rewriting, VP8/H.264
payload inspection, NACK history, upstream loss tracking, RTCP building and Sender Report clocks.

Everything here is pure: time is passed in by the caller (``now``, seconds on a monotonic clock).
"""
