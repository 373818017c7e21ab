{ Unit tests of the Pascal server's pure parts, with exact values, run by test/pascal.test.ts.

  wami-pascal-tests             runs the built-in tests; prints "ok N" and exits 0, or names every
                                failure and exits 1
  wami-pascal-tests --numbers   reads one double per line as 16 hex digits (its IEEE-754 bits) and
                                prints JsNumber(x) and JsNumber(Round3(x)), tab-separated: the node
                                test compares them with JavaScript's String(x) and Math.round
  wami-pascal-tests --frames    reads one client frame per line, base64, and prints the parser's
                                verdict as one JSON line: the node test compares it with
                                protocol/parse.ts's parseClientFrame on the same bytes }
program unittests;

{$mode objfpc}{$H+}

uses
  SysUtils, Math, base64, wamiutil, wamijson, wamiws, wamihttp, wamisplit;

var
  failures: Integer = 0;
  checks: Integer = 0;

procedure Check(cond: Boolean; const what: string);
begin
  Inc(checks);
  if not cond then
  begin
    Inc(failures);
    WriteLn('FAIL ', what);
  end;
end;

procedure Eq(const got, want, what: string);
begin
  Check(got = want, what + ': got "' + got + '", want "' + want + '"');
end;

procedure EqI(got, want: Int64; const what: string);
begin
  Check(got = want, what + ': got ' + IntToStr(got) + ', want ' + IntToStr(want));
end;

{ ---- numbers ---- }

procedure TestNumbers;
begin
  Eq(JsNumber(0), '0', 'JsNumber 0');
  Eq(JsNumber(-0.0), '0', 'JsNumber -0');
  Eq(JsNumber(1), '1', 'JsNumber 1');
  Eq(JsNumber(1.5), '1.5', 'JsNumber 1.5');
  Eq(JsNumber(0.1), '0.1', 'JsNumber 0.1');
  Eq(JsNumber(0.30000000000000004), '0.30000000000000004', 'JsNumber 0.1+0.2');
  Eq(JsNumber(100), '100', 'JsNumber 100');
  Eq(JsNumber(1e21), '1e+21', 'JsNumber 1e21');
  Eq(JsNumber(1e20), '100000000000000000000', 'JsNumber 1e20');
  Eq(JsNumber(1.5e-7), '1.5e-7', 'JsNumber 1.5e-7');
  Eq(JsNumber(0.000001), '0.000001', 'JsNumber 1e-6');
  Eq(JsNumber(-2.5), '-2.5', 'JsNumber -2.5');
  Eq(JsNumber(81234.56789012345), '81234.56789012345', 'JsNumber 81234.56789012345');
  Eq(JsNumber(5e-324), '5e-324', 'JsNumber min denormal');
  Eq(JsNumber(1.7976931348623157e308), '1.7976931348623157e+308', 'JsNumber max double');
  Eq(JsNumber(0.0002), '0.0002', 'JsNumber 0.0002 (a bucket bound)');
  Eq(JsNumber(Round3(12.3455)), '12.346', 'Round3 12.3455');
  Eq(JsNumber(Round3(-3)), '0', 'Round3 negative');
  Eq(JsNumber(Round3(0.0004)), '0', 'Round3 0.0004');
  Eq(JsNumber(Round3(0.0005)), '0.001', 'Round3 0.0005');
end;

{ ---- JSON / client frames ---- }

function P(const s: RawByteString; out u: TClientUpdate): TParseResult;
begin
  Result := ParseClientFrame(PAnsiChar(s), Length(s), u);
end;

procedure TestFrames;
var
  u: TClientUpdate;
  r: TParseResult;
  good, s: RawByteString;
begin
  good := '{"type":"update","id":"u1","card":7,"column":"doing","title":"T","at":1.5,"sentAt":2}';
  r := P(good, u);
  Check(r.ok, 'a valid update parses');
  Eq(u.id, 'u1', 'id');
  EqI(u.card, 7, 'card');
  Eq(COLUMNS[u.column], 'doing', 'column');
  Eq(JsNumber(u.at), '1.5', 'at');
  r := P('{"type":"update",', u);
  Check(not r.ok and (r.message = 'frame is not valid JSON') and not r.hasId, 'truncated JSON');
  r := P('[1,2,3]', u);
  Check(not r.ok and (r.message = 'frame is not a JSON object'), 'array');
  r := P(' "update" ', u);
  Check(not r.ok and (r.message = 'frame is not a JSON object'), 'string');
  r := P('{"type":"hello","id":"x1"}', u);
  Check(not r.ok and r.hasId and (r.id = 'x1') and (r.message = 'unknown message type "hello"'), 'unknown type echoes id');
  r := P('{"\u0074ype":"update","id":"e","card":1,"column":"todo","title":"","at":0,"sentAt":0}', u);
  Check(r.ok, 'an escaped key is the key it spells (JSON.parse)');
  r := P('{"type":"hello","type":"update","id":"d","card":1,"column":"todo","title":"","at":0,"sentAt":0}', u);
  Check(r.ok, 'duplicate key: the last wins (JSON.parse)');
  r := P('{"type":"update","id":"n","card":1.0,"column":"todo","title":"","at":1e2,"sentAt":0}', u);
  Check(r.ok and (u.card = 1) and (u.at = 100), '1.0 is the integer 1, 1e2 is 100');
  r := P('{"type":"update","id":"n","card":9007199254740992,"column":"todo","title":"","at":0,"sentAt":0}', u);
  Check(not r.ok and r.hasId and (r.message = '"card" must be a positive integer'), '2^53 is not a safe integer');
  r := P('{"type":"update","id":"n","card":1,"column":"todo","title":"","at":1e400,"sentAt":0}', u);
  Check(not r.ok and (r.message = '"at" must be a finite, non-negative number (ms)'), '1e400 is Infinity');
  r := P('{"type":"update","id":"n","card":1,"column":"todo","title":"","at":-0,"sentAt":0}', u);
  Check(r.ok, '-0 is a time (>= 0)');
  r := P('{"type":"update","id":"n","card":01,"column":"todo","title":"","at":0,"sentAt":0}', u);
  Check(not r.ok and (r.message = 'frame is not valid JSON'), 'leading zero');
  r := P('{"type":"update","id":"n","card":1,"column":"todo","title":"a' + #9 + 'b","at":0,"sentAt":0}', u);
  Check(not r.ok and (r.message = 'frame is not valid JSON'), 'raw control character in a string');
  { 200 UTF-16 units with surrogate pairs: 100 emoji is exactly 200 }
  s := '';
  while Length(s) < 400 do s := s + #$F0#$9F#$98#$80;
  r := P('{"type":"update","id":"n","card":1,"column":"todo","title":"' + s + '","at":0,"sentAt":0}', u);
  Check(r.ok, '100 emoji = 200 UTF-16 units is a valid title');
  r := P('{"type":"update","id":"n","card":1,"column":"todo","title":"' + s + 'x","at":0,"sentAt":0}', u);
  Check(not r.ok and (r.message = '"title" is longer than 200 characters'), '201 units is too long');
  r := P('{"type":"update","id":"n","card":1,"column":"todo","title":"\ud83d\ude00\ud800","at":0,"sentAt":0}', u);
  Check(r.ok and (u.title = #$F0#$9F#$98#$80#$ED#$A0#$80), 'a pair decodes to one code point, a lone surrogate stays');
  Eq(JsonStr(u.title), '"' + #$F0#$9F#$98#$80 + '\ud800"', 'a lone surrogate is written back as \udXXX');
  Eq(DbText(u.title), #$F0#$9F#$98#$80#$EF#$BF#$BD, 'and stored as U+FFFD');
  Eq(JsonStr('a"b\c' + #10 + #1 + #$7F), '"a\"b\\c\n\u0001' + #$7F + '"', 'JsonStr escapes as JSON.stringify');
  r := P('{"type":"update","id":"' + StringOfChar('i', 65) + '","card":1,"column":"todo","title":"","at":0,"sentAt":0}', u);
  Check(not r.ok and not r.hasId and (r.message = '"id" is longer than 64 characters'), 'id over 64');
  r := P('{"type":"update","id":"k","card":1,"column":"todo","title":"","at":0,"sentAt":0,"extra":true}', u);
  Check(not r.ok and r.hasId and (r.message = 'unknown field "extra"'), 'unknown field');
  s := '{"type":"update","id":"k","card":1,"column":"todo","title":"' + StringOfChar('y', 4096) + '","at":0,"sentAt":0}';
  r := P(s, u);
  Check(not r.ok and not r.hasId and (r.message = 'frame of ' + IntToStr(Length(s)) + ' bytes exceeds the limit of 4096'), 'frame over 4096');
end;

{ ---- UTF-8 ---- }

procedure TestUtf8;

  function V(const s: RawByteString): Boolean;
  begin
    Result := IsValidUtf8(PByte(PAnsiChar(s)), Length(s));
  end;

begin
  Check(V('plain ascii'), 'ascii');
  Check(V(#$C3#$A9), '2-byte');
  Check(V(#$F0#$9F#$98#$80), '4-byte');
  Check(not V(#$C0#$AF), 'overlong 2-byte');
  Check(not V(#$E0#$80#$AF), 'overlong 3-byte');
  Check(not V(#$ED#$A0#$80), 'UTF-16 surrogate');
  Check(not V(#$F4#$90#$80#$80), 'above U+10FFFF');
  Check(not V(#$C3), 'truncated');
  Check(not V(#$80), 'lone continuation');
  Check(not V(#$FF), '0xFF');
end;

{ ---- WebSocket ---- }

procedure TestWs;
var
  h: TFrameHeader;
  b: array[0..15] of Byte;
  st: TFrameStatus;
begin
  Eq(AcceptKey('dGhlIHNhbXBsZSBub25jZQ=='), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=', 'RFC 6455 section 1.3 accept key');
  Check(IsValidWsKey('dGhlIHNhbXBsZSBub25jZQ=='), 'a valid key');
  Check(not IsValidWsKey('dGhlIHNhbXBsZSBub25jZQ='), 'a short key');
  FillChar(b, SizeOf(b), 0);
  b[0] := $81; b[1] := $85; { FIN text, masked, 5 bytes }
  st := ParseFrameHeader(@b[0], 6, False, 0, 65536, h);
  Check(st = fsOk, 'masked text header');
  EqI(h.headerLen, 6, 'header length');
  EqI(h.payloadLen, 5, 'payload length');
  st := ParseFrameHeader(@b[0], 5, False, 0, 65536, h);
  Check(st = fsNeedMore, 'incomplete mask key');
  b[1] := $05;
  st := ParseFrameHeader(@b[0], 6, False, 0, 65536, h);
  Check((st = fsError) and (h.closeCode = 1002), 'unmasked client frame: 1002');
  b[0] := $C1; b[1] := $85;
  st := ParseFrameHeader(@b[0], 6, False, 0, 65536, h);
  Check((st = fsError) and (h.closeCode = 1002), 'RSV1 without an extension: 1002');
  b[0] := $83;
  st := ParseFrameHeader(@b[0], 6, False, 0, 65536, h);
  Check((st = fsError) and (h.closeCode = 1002), 'opcode 3: 1002');
  b[0] := $09; { ping without FIN }
  st := ParseFrameHeader(@b[0], 6, False, 0, 65536, h);
  Check((st = fsError) and (h.closeCode = 1002), 'fragmented ping: 1002');
  b[0] := $80; { continuation, no message }
  st := ParseFrameHeader(@b[0], 6, False, 0, 65536, h);
  Check((st = fsError) and (h.closeCode = 1002), 'continuation without a message: 1002');
  b[0] := $01; { text, not FIN, inside a message }
  st := ParseFrameHeader(@b[0], 6, True, 10, 65536, h);
  Check((st = fsError) and (h.closeCode = 1002), 'a new data frame inside a fragmented message: 1002');
  b[0] := $81; b[1] := $FE; b[2] := $01; b[3] := $00; { 256 bytes, 16-bit length }
  st := ParseFrameHeader(@b[0], 8, False, 0, 65536, h);
  Check((st = fsOk) and (h.payloadLen = 256) and (h.headerLen = 8), '16-bit length');
  b[1] := $FF; b[2] := 0; b[3] := 0; b[4] := 0; b[5] := 0; b[6] := 0; b[7] := 1; b[8] := 0; b[9] := 1; { 65537 }
  st := ParseFrameHeader(@b[0], 14, False, 0, 65536, h);
  Check((st = fsError) and (h.closeCode = 1009), 'a frame above the ceiling: 1009 from the header alone');
  b[0] := $80; b[1] := $FE; b[2] := $01; b[3] := $00; { continuation of 256 after 65400 }
  st := ParseFrameHeader(@b[0], 8, True, 65400, 65536, h);
  Check((st = fsError) and (h.closeCode = 1009), 'a fragmented message above the ceiling: 1009');
  Check(IsValidCloseCode(1000) and IsValidCloseCode(4008) and not IsValidCloseCode(1005) and not IsValidCloseCode(999) and
    not IsValidCloseCode(5000), 'close codes');
  EqI(Length(BuildFrame(OP_TEXT, StringOfChar('x', 125))), 127, 'frame of 125: 2-byte header');
  EqI(Length(BuildFrame(OP_TEXT, StringOfChar('x', 126))), 130, 'frame of 126: 4-byte header');
  EqI(Length(BuildFrame(OP_TEXT, StringOfChar('x', 65536))), 65546, 'frame of 65536: 10-byte header');
end;

{ ---- HTTP ---- }

procedure TestHttp;
var
  r: THttpRequest;
  s, v: RawByteString;
begin
  s := 'GET /ws?board=1&user=2 HTTP/1.1'#13#10'Host: x'#13#10'Connection: keep-alive, Upgrade'#13#10'Upgrade: websocket'#13#10 +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=='#13#10'Sec-WebSocket-Version: 13'#13#10#13#10'rest';
  EqI(FindHeadEnd(PAnsiChar(s), Length(s)), Length(s) - 4, 'head end');
  Check(ParseRequestHead(PAnsiChar(s), Length(s) - 4, r), 'an upgrade head parses');
  Check(r.upgrade and r.keepAlive and (r.path = '/ws') and (r.query = 'board=1&user=2') and (r.wsVersion = '13'), 'upgrade fields');
  Check(not QueryGet('board=1&board=2', 'board', v), 'a repeated parameter counts as invalid');
  Check(QueryGet('board=1&user=2', 'board', v) and (v = '1'), 'one occurrence');
  Check(QueryGet('user=%31%32&board=+3', 'board', v) and (v = ' 3') and not IsId15(v), '+ is a space');
  Check(not QueryGet('boards=1', 'board', v), 'absent');
  Check(IsId15('123456789012345') and not IsId15('1234567890123456') and not IsId15('') and not IsId15('-1'), 'IsId15');
  s := 'GET /healthz HTTP/1.0'#13#10#13#10;
  Check(ParseRequestHead(PAnsiChar(s), Length(s), r) and not r.keepAlive, 'HTTP/1.0 closes by default');
  s := 'GET /healthz HTTP/1.1'#13#10'Connection: close'#13#10#13#10;
  Check(ParseRequestHead(PAnsiChar(s), Length(s), r) and not r.keepAlive and not r.upgrade, 'Connection: close');
  s := 'GARBAGE'#13#10#13#10;
  Check(not ParseRequestHead(PAnsiChar(s), Length(s), r), 'a malformed request line');
  s := 'GET / HTTP/1.1'#13#10'Content-Length: -1'#13#10#13#10;
  Check(not ParseRequestHead(PAnsiChar(s), Length(s), r), 'a negative Content-Length');
end;

{ ---- the writer's commit policy: the exact numbers of test/server-logic.test.ts ---- }

type
  TFakeTx = class
    bad: array of Boolean;
    transientLeft: Integer;
    clock: Double;
    log: string;
    function Attempt(lo, hi: Integer): TTryOutcome;
  end;

function TFakeTx.Attempt(lo, hi: Integer): TTryOutcome;
var
  i: Integer;
begin
  log := log + '[';
  for i := lo to hi - 1 do log := log + IntToStr(i);
  log := log + ']';
  Result.startMs := clock;
  clock := clock + (hi - lo);
  Result.endMs := clock;
  Result.errCode := 0;
  Result.errText := '';
  if transientLeft > 0 then
  begin
    Dec(transientLeft);
    Result.ok := False;
    Result.errCode := 5;
    Exit;
  end;
  for i := lo to hi - 1 do
    if bad[i] then
    begin
      Result.ok := False;
      Result.errCode := 19;
      Result.errText := 'bad ' + IntToStr(i);
      Exit;
    end;
  Result.ok := True;
end;

function Outcomes(const r: TSplitResult): string;
var
  i: Integer;
begin
  Result := '';
  for i := 0 to High(r.rows) do
  begin
    if i > 0 then Result := Result + ' ';
    if r.rows[i].ok then Result := Result + 'ok' + IntToStr(r.rows[i].attempts)
    else Result := Result + 'fail' + IntToStr(r.rows[i].attempts);
  end;
end;

function TxLog(const r: TSplitResult): string;
var
  i: Integer;
begin
  Result := '';
  for i := 0 to High(r.tx) do
  begin
    Result := Result + IntToStr(r.tx[i].size);
    if r.tx[i].ok then Result := Result + '+' else Result := Result + '-';
  end;
end;

procedure TestSplit;
var
  f: TFakeTx;
  r: TSplitResult;
begin
  f := TFakeTx.Create;
  SetLength(f.bad, 8);
  f.bad[5] := True;
  r := CommitWithSplit(8, 0, @f.Attempt);
  Eq(f.log, '[01234567][0123][4567][45][4][5][67]', 'one bad row among 8, retries 0: transactions');
  Eq(Outcomes(r), 'ok2 ok2 ok2 ok2 ok4 fail4 ok3 ok3', 'one bad row among 8: attempts');
  Eq(TxLog(r), '8-4+4-2-1+1-2+', 'one bad row among 8: tx');
  EqI(r.splits, 3, 'splits');
  EqI(r.retries, 0, 'retries');
  Eq(r.rows[5].errText, 'bad 5', 'the failing row keeps its error');
  f.Free;

  f := TFakeTx.Create;
  SetLength(f.bad, 3);
  f.bad[2] := True;
  r := CommitWithSplit(3, 1, @f.Attempt);
  Eq(f.log, '[012][012][01][2][2]', 'retries 1: each failing range is retried once before splitting');
  Eq(Outcomes(r), 'ok3 ok3 fail4', 'retries 1: attempts');
  EqI(r.retries, 2, 'retries 1: retries');
  EqI(r.splits, 1, 'retries 1: splits');
  f.Free;

  f := TFakeTx.Create;
  SetLength(f.bad, 4);
  f.transientLeft := 99;
  r := CommitWithSplit(4, 2, @f.Attempt);
  Eq(f.log, '[0123][0123][0123]', 'SQLITE_BUSY: retried, never split');
  Eq(Outcomes(r), 'fail3 fail3 fail3 fail3', 'SQLITE_BUSY: all fail together');
  f.Free;

  f := TFakeTx.Create;
  SetLength(f.bad, 4);
  f.transientLeft := 1;
  r := CommitWithSplit(4, 1, @f.Attempt);
  Eq(Outcomes(r), 'ok2 ok2 ok2 ok2', 'a transient SQLITE_BUSY: the retry commits');
  f.Free;
end;

{ ---- differential modes ---- }

procedure NumbersMode;
var
  line: string;
  bits: QWord;
  x: Double;
begin
  while not EOF(Input) do
  begin
    ReadLn(line);
    if line = '' then Continue;
    bits := StrToQWord('$' + line);
    Move(bits, x, 8);
    WriteLn(JsNumber(x), #9, JsNumber(Round3(x)));
  end;
end;

procedure FramesMode;
var
  line: string;
  raw, outS: RawByteString;
  u: TClientUpdate;
  r: TParseResult;
begin
  while not EOF(Input) do
  begin
    ReadLn(line);
    raw := DecodeStringBase64(line);
    r := ParseClientFrame(PAnsiChar(raw), Length(raw), u);
    if r.ok then
      outS := '{"ok":true,"id":' + JsonStr(u.id) + ',"card":' + IntToStr(u.card) + ',"column":"' + COLUMNS[u.column] +
        '","title":' + JsonStr(u.title) + ',"at":' + JsNumber(u.at) + ',"sentAt":' + JsNumber(u.sentAt) + '}'
    else
    begin
      outS := '{"ok":false,"message":' + JsonStr(r.message);
      if r.hasId then outS := outS + ',"id":' + JsonStr(r.id);
      outS := outS + '}';
    end;
    WriteLn(outS);
  end;
end;

begin
  { as the server: IEEE semantics (Infinity, NaN) instead of FPC's floating-point exceptions }
  SetExceptionMask([exInvalidOp, exDenormalized, exZeroDivide, exOverflow, exUnderflow, exPrecision]);
  if (ParamCount = 1) and (ParamStr(1) = '--numbers') then
  begin
    NumbersMode;
    Halt(0);
  end;
  if (ParamCount = 1) and (ParamStr(1) = '--frames') then
  begin
    FramesMode;
    Halt(0);
  end;
  TestNumbers;
  TestFrames;
  TestUtf8;
  TestWs;
  TestHttp;
  TestSplit;
  if failures > 0 then
  begin
    WriteLn(failures, ' of ', checks, ' checks failed');
    Halt(1);
  end;
  WriteLn('ok ', checks, ' checks');
end.
