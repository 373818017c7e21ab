{ RFC 6455 framing, pure: the Sec-WebSocket-Accept key (SHA-1 + base64 from the RTL/FCL), the
  header of a client frame (masking, fragmentation, control frames, the payload ceiling), and
  server frames. The checks and close codes follow the ws library the TypeScript servers use:
  RSV bits, unknown opcodes, unmasked client frames, bad control frames and continuation misuse
  are 1002; a payload above the ceiling (one frame or a fragmented message in all) is 1009,
  decided from the header alone, so the server never buffers more than the ceiling. }
unit wamiws;

{$mode objfpc}{$H+}

interface

const
  OP_CONT = 0;
  OP_TEXT = 1;
  OP_BINARY = 2;
  OP_CLOSE = 8;
  OP_PING = 9;
  OP_PONG = 10;

  CLOSE_NORMAL = 1000;
  CLOSE_GOING_AWAY = 1001;
  CLOSE_PROTOCOL_ERROR = 1002;
  CLOSE_INVALID_PAYLOAD = 1007;
  CLOSE_TOO_BIG = 1009;
  CLOSE_SLOW_CONSUMER = 4008;

type
  TFrameStatus = (fsNeedMore, fsOk, fsError);

  TFrameHeader = record
    fin: Boolean;
    opcode: Byte;
    headerLen: Integer;
    payloadLen: Int64;
    mask: array[0..3] of Byte;
    { when fsError }
    closeCode: Word;
    reason: RawByteString;
  end;

function AcceptKey(const key: RawByteString): RawByteString;
function IsValidWsKey(const key: RawByteString): Boolean;
{ Reads the header at p (avail bytes). `inMessage`: a fragmented data message is in progress;
  `messageSoFar`: its payload bytes so far; `maxPayload`: the transport ceiling. }
function ParseFrameHeader(p: PByte; avail: SizeInt; inMessage: Boolean; messageSoFar, maxPayload: Int64;
  out h: TFrameHeader): TFrameStatus;
procedure Unmask(p: PByte; n: SizeInt; const mask: array of Byte);
{ A server frame (FIN, unmasked) with `payload`. }
function BuildFrame(opcode: Byte; const payload: RawByteString): RawByteString;
function BuildFrameFrom(opcode: Byte; p: Pointer; n: SizeInt): RawByteString;
function BuildCloseFrame(code: Word; const reason: RawByteString): RawByteString;
function IsValidCloseCode(code: Integer): Boolean;

implementation

uses
  SysUtils, sha1, base64;

const
  WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

function AcceptKey(const key: RawByteString): RawByteString;
var
  d: TSHA1Digest;
  raw: RawByteString;
begin
  d := SHA1String(key + WS_GUID);
  SetString(raw, PAnsiChar(@d[0]), SizeOf(d));
  Result := EncodeStringBase64(raw);
end;

// ws: /^[+/0-9A-Za-z]{22}==$/
function IsValidWsKey(const key: RawByteString): Boolean;
var
  i: Integer;
begin
  if (Length(key) <> 24) or (key[23] <> '=') or (key[24] <> '=') then Exit(False);
  for i := 1 to 22 do
    if not (key[i] in ['+', '/', '0'..'9', 'A'..'Z', 'a'..'z']) then Exit(False);
  Result := True;
end;

function IsValidCloseCode(code: Integer): Boolean;
begin
  Result := ((code >= 1000) and (code <= 1014) and (code <> 1004) and (code <> 1005) and (code <> 1006)) or
    ((code >= 3000) and (code <= 4999));
end;

function Fail(var h: TFrameHeader; code: Word; const why: RawByteString): TFrameStatus;
begin
  h.closeCode := code;
  h.reason := why;
  Result := fsError;
end;

function ParseFrameHeader(p: PByte; avail: SizeInt; inMessage: Boolean; messageSoFar, maxPayload: Int64;
  out h: TFrameHeader): TFrameStatus;
var
  b0, b1: Byte;
  len7: Integer;
  pos, i: Integer;
  l: QWord;
begin
  h.closeCode := 0;
  h.reason := '';
  h.payloadLen := 0;
  h.headerLen := 0;
  if avail < 2 then Exit(fsNeedMore);
  b0 := p[0];
  b1 := p[1];
  h.fin := (b0 and $80) <> 0;
  h.opcode := b0 and $0F;
  if (b0 and $70) <> 0 then Exit(Fail(h, CLOSE_PROTOCOL_ERROR, 'RSV bits must be clear'));
  case h.opcode of
    OP_CONT:
      if not inMessage then Exit(Fail(h, CLOSE_PROTOCOL_ERROR, 'continuation frame without a message'));
    OP_TEXT, OP_BINARY:
      if inMessage then Exit(Fail(h, CLOSE_PROTOCOL_ERROR, 'data frame inside a fragmented message'));
    OP_CLOSE, OP_PING, OP_PONG:
      if not h.fin then Exit(Fail(h, CLOSE_PROTOCOL_ERROR, 'fragmented control frame'));
  else
    Exit(Fail(h, CLOSE_PROTOCOL_ERROR, 'invalid opcode ' + IntToStr(h.opcode)));
  end;
  if (b1 and $80) = 0 then Exit(Fail(h, CLOSE_PROTOCOL_ERROR, 'client frames must be masked'));
  len7 := b1 and $7F;
  pos := 2;
  if h.opcode >= OP_CLOSE then
    if len7 > 125 then Exit(Fail(h, CLOSE_PROTOCOL_ERROR, 'control frame payload over 125 bytes'));
  if len7 = 126 then
  begin
    if avail < 4 then Exit(fsNeedMore);
    l := (QWord(p[2]) shl 8) or p[3];
    pos := 4;
  end
  else if len7 = 127 then
  begin
    if avail < 10 then Exit(fsNeedMore);
    l := 0;
    for i := 2 to 9 do l := (l shl 8) or p[i];
    pos := 10;
    if l > QWord(9007199254740991) then Exit(Fail(h, CLOSE_TOO_BIG, 'payload length over 2^53 - 1'));
  end
  else
    l := len7;
  if (h.opcode < OP_CLOSE) and (Int64(l) + messageSoFar > maxPayload) then
    Exit(Fail(h, CLOSE_TOO_BIG, 'message too big'));
  if avail < pos + 4 then Exit(fsNeedMore);
  for i := 0 to 3 do h.mask[i] := p[pos + i];
  h.headerLen := pos + 4;
  h.payloadLen := Int64(l);
  Result := fsOk;
end;

procedure Unmask(p: PByte; n: SizeInt; const mask: array of Byte);
var
  i: SizeInt;
  m32: Cardinal;
  q: PCardinal;
begin
  m32 := Cardinal(mask[0]) or (Cardinal(mask[1]) shl 8) or (Cardinal(mask[2]) shl 16) or (Cardinal(mask[3]) shl 24);
  q := PCardinal(p);
  i := 0;
  while i + 4 <= n do
  begin
    q^ := q^ xor m32;
    Inc(q);
    Inc(i, 4);
  end;
  while i < n do
  begin
    p[i] := p[i] xor mask[i and 3];
    Inc(i);
  end;
end;

function BuildFrameFrom(opcode: Byte; p: Pointer; n: SizeInt): RawByteString;
var
  hl, i: Integer;
  o: PByte;
begin
  if n < 126 then hl := 2
  else if n < 65536 then hl := 4
  else hl := 10;
  SetLength(Result, hl + n);
  o := PByte(PAnsiChar(Result));
  o[0] := $80 or opcode;
  if n < 126 then
    o[1] := n
  else if n < 65536 then
  begin
    o[1] := 126;
    o[2] := (n shr 8) and $FF;
    o[3] := n and $FF;
  end
  else
  begin
    o[1] := 127;
    for i := 0 to 7 do o[2 + i] := (QWord(n) shr (8 * (7 - i))) and $FF;
  end;
  if n > 0 then Move(p^, o[hl], n);
end;

function BuildFrame(opcode: Byte; const payload: RawByteString): RawByteString;
begin
  Result := BuildFrameFrom(opcode, PAnsiChar(payload), Length(payload));
end;

function BuildCloseFrame(code: Word; const reason: RawByteString): RawByteString;
var
  pl: RawByteString;
begin
  pl := AnsiChar(code shr 8) + AnsiChar(code and $FF) + Copy(reason, 1, 123);
  Result := BuildFrame(OP_CLOSE, pl);
end;

end.
