"""The ONNX models behind turn-taking (Silero VAD, Smart Turn v3), loaded once per process and
shared by every call's analyzers.

pipecat's `SileroVADAnalyzer` and `LocalSmartTurnAnalyzerV3` each open an `InferenceSession`
in their constructor, on the event loop, for every call (tens to hundreds of milliseconds
each, serialized across simultaneous call starts, and a copy of the model per call). The
analyzers here are the same classes with the same per-call state (Silero's recurrent state,
Smart Turn's audio buffer), but they run one process-wide session per model:
`InferenceSession.run` is thread-safe, and each analyzer still runs it on its own thread.

Skipping pipecat's constructors means setting the attributes they would have set; that is
done in `_adopt_silero_model` and `_adopt_smart_turn_session` only, and
tests/media_worker/test_turn_models.py fails if pipecat's constructors change underneath.
"""

from __future__ import annotations

import functools
from importlib import resources

import onnxruntime as ort  # type: ignore[import-untyped]  # ships no type information
from pipecat.audio.turn.smart_turn.base_smart_turn import BaseSmartTurn, SmartTurnParams
from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3
from pipecat.audio.vad.silero import SileroOnnxModel, SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADAnalyzer, VADParams

_SILERO_MODEL = ("pipecat.audio.vad.data", "silero_vad.onnx")
_SMART_TURN_MODEL = ("pipecat.audio.turn.smart_turn.data", "smart-turn-v3.2-cpu.onnx")


def _model_path(package: str, name: str) -> str:
    return str(resources.files(package).joinpath(name))


@functools.cache
def silero_session() -> ort.InferenceSession:
    """The process's Silero VAD session, opened with pipecat's options (one CPU thread)."""
    options = ort.SessionOptions()
    options.inter_op_num_threads = 1
    options.intra_op_num_threads = 1
    return ort.InferenceSession(
        _model_path(*_SILERO_MODEL), providers=["CPUExecutionProvider"], sess_options=options
    )


@functools.cache
def smart_turn_session() -> ort.InferenceSession:
    """The process's Smart Turn v3 session, opened with pipecat's options (one CPU thread)."""
    options = ort.SessionOptions()
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    options.intra_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(_model_path(*_SMART_TURN_MODEL), sess_options=options)


def load_turn_models() -> None:
    """Open both sessions now (blocking: run it in a thread), so no call start pays for it."""
    silero_session()
    smart_turn_session()


class _SharedSileroModel(SileroOnnxModel):
    """pipecat's Silero wrapper (per-call recurrent state) around the shared session."""

    def __init__(self, session: ort.InferenceSession) -> None:
        # Not super().__init__(): it would open another session. These are its public fields.
        self.session = session
        self.reset_states()  # type: ignore[no-untyped-call]  # pipecat leaves it unannotated
        self.sample_rates = [8000, 16000]


class SharedSileroVADAnalyzer(SileroVADAnalyzer):
    """`SileroVADAnalyzer` on the process's Silero session (see the module docstring)."""

    def __init__(
        self,
        *,
        sample_rate: int | None = None,
        params: VADParams | None = None,
        session: ort.InferenceSession | None = None,
    ) -> None:
        # Not SileroVADAnalyzer.__init__: it loads the model. Its base sets up the VAD state.
        VADAnalyzer.__init__(self, sample_rate=sample_rate, params=params)
        _adopt_silero_model(self, _SharedSileroModel(session or silero_session()))


class SharedSmartTurnAnalyzer(LocalSmartTurnAnalyzerV3):
    """`LocalSmartTurnAnalyzerV3` on the process's Smart Turn session (see the module
    docstring)."""

    def __init__(
        self,
        *,
        sample_rate: int | None = None,
        params: SmartTurnParams | None = None,
        session: ort.InferenceSession | None = None,
    ) -> None:
        # Not LocalSmartTurnAnalyzerV3.__init__: it loads the model. Its base sets up the
        # turn state (audio buffer, silence tracking, the model's thread).
        BaseSmartTurn.__init__(self, sample_rate=sample_rate, params=params)
        _adopt_smart_turn_session(self, session or smart_turn_session())


def _adopt_silero_model(analyzer: SileroVADAnalyzer, model: SileroOnnxModel) -> None:
    """What `SileroVADAnalyzer.__init__` sets after its base (pipecat 1.14 private fields)."""
    analyzer._model = model
    analyzer._windows_since_reset = 0
    analyzer._low_confidence_windows = 0


def _adopt_smart_turn_session(
    analyzer: LocalSmartTurnAnalyzerV3, session: ort.InferenceSession
) -> None:
    """What `LocalSmartTurnAnalyzerV3.__init__` sets after its base (pipecat 1.14 private
    fields); `_log_data` (PIPECAT_SMART_TURN_LOG_DATA: WAV dumps) stays off in calls."""
    analyzer._session = session
    analyzer._log_data = False
