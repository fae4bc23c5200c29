"""Real LiveKit participants (PyPI `livekit`) for the e2e tests."""

from __future__ import annotations

import asyncio
import math
import struct
from dataclasses import dataclass, field

from livekit import rtc

SAMPLE_RATE = 48_000
SAMPLES = 480  # 10 ms


def tone(frame_index: int) -> bytes:
    start = frame_index * SAMPLES
    return struct.pack(
        f"<{SAMPLES}h",
        *(
            int(8000 * math.sin(2 * math.pi * 440 * (start + i) / SAMPLE_RATE))
            for i in range(SAMPLES)
        ),
    )


@dataclass
class Participant:
    room: rtc.Room = field(default_factory=rtc.Room)
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)
    metadata_changed: asyncio.Event = field(default_factory=asyncio.Event)
    _feeder: asyncio.Task[None] | None = None

    async def connect(self, url: str, token: str) -> None:
        self.room.on("disconnected", lambda *_: self.disconnected.set())
        self.room.on("room_metadata_changed", lambda *_: self.metadata_changed.set())
        await asyncio.wait_for(self.room.connect(url, token), 30)

    async def publish_audio(self) -> None:
        source = rtc.AudioSource(SAMPLE_RATE, 1)
        track = rtc.LocalAudioTrack.create_audio_track("tone", source)
        await self.room.local_participant.publish_track(
            track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        )

        async def feed() -> None:
            n = 0
            while True:
                await source.capture_frame(rtc.AudioFrame(tone(n), SAMPLE_RATE, 1, SAMPLES))
                n += 1

        self._feeder = asyncio.create_task(feed())

    async def receive_audio_frames(self, wanted: int, timeout: float = 30) -> int:
        """Wait for a remote audio track and count frames that carry signal."""
        subscribed: asyncio.Future[rtc.Track] = asyncio.get_running_loop().create_future()

        def on_track(track: rtc.Track, *_: object) -> None:
            if track.kind == rtc.TrackKind.KIND_AUDIO and not subscribed.done():
                subscribed.set_result(track)

        self.room.on("track_subscribed", on_track)
        for participant in self.room.remote_participants.values():
            for publication in participant.track_publications.values():
                if publication.track is not None and publication.kind == rtc.TrackKind.KIND_AUDIO:
                    on_track(publication.track)
        track = await asyncio.wait_for(subscribed, timeout)
        stream = rtc.AudioStream(track, sample_rate=SAMPLE_RATE, num_channels=1)
        loud = 0
        try:
            async with asyncio.timeout(timeout):
                async for event in stream:
                    samples = memoryview(event.frame.data).cast("B").cast("h")
                    if len(samples) and max(abs(s) for s in samples) > 1000:
                        loud += 1
                        if loud >= wanted:
                            break
        finally:
            await stream.aclose()
        return loud

    async def close(self) -> None:
        if self._feeder is not None:
            self._feeder.cancel()
        await self.room.disconnect()
