from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class ExitMessage(_message.Message):
    __slots__ = ("Code",)
    CODE_FIELD_NUMBER: _ClassVar[int]
    Code: int
    def __init__(self, Code: _Optional[int] = ...) -> None: ...
