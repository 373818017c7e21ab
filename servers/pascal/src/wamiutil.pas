{ Pure helpers of the wami Pascal server, no I/O beyond the clock:
  - NowMs: CLOCK_MONOTONIC in ms (the fleet's shared clock, protocol v1 section 8);
  - JsNumber: a double written exactly as JavaScript's Number#toString / JSON.stringify writes it
    (shortest digits that read back to the same double), so server frames are byte-identical to
    the TypeScript servers' and `at`/`sentAt` come back bit-for-bit;
  - ParseJsDouble: decimal text -> double, correctly rounded (glibc strtod), as JSON.parse;
  - JsonStr: a UTF-8 string as a JSON string literal, escaped exactly as JSON.stringify escapes;
  - IsValidUtf8: strict UTF-8 (no overlongs, no surrogates, <= U+10FFFF), as the ws library checks;
  - TByteBuf: a growable byte buffer with a read offset (socket in/out buffers).
  Strings inside the server are UTF-8 byte strings (RawByteString). A lone UTF-16 surrogate that a
  client sent as a \uD800-style escape is kept as its 3-byte "WTF-8" form (ED A0..BF xx) so JsonStr
  can write it back as \udxxx, like JSON.stringify; DbText turns it into U+FFFD for SQLite, as V8
  does when better-sqlite3 binds such a string. }
unit wamiutil;

{$mode objfpc}{$H+}

interface

uses
  SysUtils, ctypes;

function NowMs: Double;
function JsNumber(x: Double): RawByteString;
function ParseJsDouble(p: PAnsiChar; len: SizeInt; out v: Double): Boolean;
function JsonStr(const s: RawByteString): RawByteString;
procedure AppendJsonStr(var dst: RawByteString; const s: RawByteString);
function IsValidUtf8(p: PByte; len: SizeInt): Boolean;
function DbText(const s: RawByteString): RawByteString;
{ Math.round(max(0, x) * 1000) / 1000, as the TypeScript servers round queueMs/commitMs. }
function Round3(x: Double): Double;
function IntStr(v: Int64): RawByteString; inline;
{ The value of one hex digit, -1 for anything else. }
function HexVal(c: AnsiChar): Integer; inline;

type
  { Growable byte buffer: data[head .. head+len-1] is the content. }
  TByteBuf = record
    data: array of Byte;
    head: SizeInt;
    len: SizeInt;
  end;

procedure BufAppend(var b: TByteBuf; p: Pointer; n: SizeInt);
procedure BufConsume(var b: TByteBuf; n: SizeInt);
procedure BufClear(var b: TByteBuf);
function BufPtr(const b: TByteBuf): PByte; inline;

implementation

uses
  Linux, UnixType, Math;

function c_snprintf(buf: PAnsiChar; n: csize_t; fmt: PAnsiChar): cint; cdecl; varargs; external 'c' name 'snprintf';
function c_strtod(nptr: PAnsiChar; endptr: PPAnsiChar): cdouble; cdecl; external 'c' name 'strtod';

function NowMs: Double;
var
  ts: TTimeSpec;
begin
  clock_gettime(CLOCK_MONOTONIC, @ts);
  Result := ts.tv_sec * 1000.0 + ts.tv_nsec / 1000000.0;
end;

function IntStr(v: Int64): RawByteString;
begin
  Result := IntToStr(v);
end;

function HexVal(c: AnsiChar): Integer;
begin
  case c of
    '0'..'9': Result := Ord(c) - Ord('0');
    'a'..'f': Result := Ord(c) - Ord('a') + 10;
    'A'..'F': Result := Ord(c) - Ord('A') + 10;
  else
    Result := -1;
  end;
end;

{ %.(p-1)e of x into buf; returns whether it reads back as x. }
function TryDigits(x: Double; p: Integer; buf: PAnsiChar): Boolean;
begin
  c_snprintf(buf, 40, '%.*e', cint(p - 1), x);
  Result := c_strtod(buf, nil) = x;
end;

function JsNumber(x: Double): RawByteString;
var
  buf: array[0..47] of AnsiChar;
  lo, hi, mid, k, n, i, e: Integer;
  digits: RawByteString;
  neg: Boolean;
  p: PAnsiChar;
begin
  if IsNan(x) or IsInfinite(x) then Exit('null');
  if x = 0 then Exit('0');
  neg := x < 0;
  if neg then x := -x;
  { smallest p in 1..17 whose correctly rounded p-digit form reads back as x (monotonic in p) }
  lo := 1;
  hi := 17;
  while lo < hi do
  begin
    mid := (lo + hi) div 2;
    if TryDigits(x, mid, @buf[0]) then hi := mid else lo := mid + 1;
  end;
  TryDigits(x, lo, @buf[0]);
  { buf = d[.ddd]e[+-]XX }
  digits := '';
  p := @buf[0];
  while (p^ <> 'e') and (p^ <> #0) do
  begin
    if p^ <> '.' then digits := digits + p^;
    Inc(p);
  end;
  e := 0;
  if p^ = 'e' then e := StrToInt(StrPas(p + 1));
  k := Length(digits);
  while (k > 1) and (digits[k] = '0') do Dec(k);
  SetLength(digits, k);
  n := e + 1; { x = 0.digits * 10^n }
  if (k <= n) and (n <= 21) then
    Result := digits + StringOfChar('0', n - k)
  else if (0 < n) and (n <= 21) then
    Result := Copy(digits, 1, n) + '.' + Copy(digits, n + 1, k - n)
  else if (-6 < n) and (n <= 0) then
    Result := '0.' + StringOfChar('0', -n) + digits
  else
  begin
    if k = 1 then Result := digits else Result := digits[1] + '.' + Copy(digits, 2, k - 1);
    i := n - 1;
    if i >= 0 then Result := Result + 'e+' + IntToStr(i) else Result := Result + 'e-' + IntToStr(-i);
  end;
  if neg then Result := '-' + Result;
end;

function ParseJsDouble(p: PAnsiChar; len: SizeInt; out v: Double): Boolean;
var
  buf: array[0..63] of AnsiChar;
  heap: RawByteString;
  src: PAnsiChar;
  endp: PAnsiChar;
begin
  if len < Length(buf) then
  begin
    Move(p^, buf[0], len);
    buf[len] := #0;
    src := @buf[0];
  end
  else
  begin
    SetString(heap, p, len);
    src := PAnsiChar(heap);
  end;
  v := c_strtod(src, @endp);
  Result := endp = src + len;
end;

const
  HexDigits: array[0..15] of AnsiChar = '0123456789abcdef';

procedure AppendJsonStr(var dst: RawByteString; const s: RawByteString);
var
  i, n, start, outLen, extra: SizeInt;
  c: Byte;
  o: PAnsiChar;
  cp: Integer;
begin
  n := Length(s);
  { size first: one allocation }
  extra := 2;
  i := 1;
  while i <= n do
  begin
    c := Byte(s[i]);
    if (c = Ord('"')) or (c = Ord('\')) or (c = 8) or (c = 9) or (c = 10) or (c = 12) or (c = 13) then Inc(extra)
    else if c < $20 then Inc(extra, 5)
    else if (c = $ED) and (i + 2 <= n) and (Byte(s[i + 1]) >= $A0) then
    begin
      Inc(extra, 3); { 3 bytes -> \udxxx (6) }
      Inc(i, 2);
    end;
    Inc(i);
  end;
  start := Length(dst);
  outLen := start + n + extra;
  SetLength(dst, outLen);
  o := PAnsiChar(dst) + start;
  o^ := '"';
  Inc(o);
  i := 1;
  while i <= n do
  begin
    c := Byte(s[i]);
    case c of
      Ord('"'): begin o[0] := '\'; o[1] := '"'; Inc(o, 2); end;
      Ord('\'): begin o[0] := '\'; o[1] := '\'; Inc(o, 2); end;
      8: begin o[0] := '\'; o[1] := 'b'; Inc(o, 2); end;
      9: begin o[0] := '\'; o[1] := 't'; Inc(o, 2); end;
      10: begin o[0] := '\'; o[1] := 'n'; Inc(o, 2); end;
      12: begin o[0] := '\'; o[1] := 'f'; Inc(o, 2); end;
      13: begin o[0] := '\'; o[1] := 'r'; Inc(o, 2); end;
      0..7, 11, 14..31:
        begin
          o[0] := '\'; o[1] := 'u'; o[2] := '0'; o[3] := '0';
          o[4] := HexDigits[c shr 4]; o[5] := HexDigits[c and 15];
          Inc(o, 6);
        end;
    else
      if (c = $ED) and (i + 2 <= n) and (Byte(s[i + 1]) >= $A0) then
      begin
        cp := ((c and $0F) shl 12) or ((Byte(s[i + 1]) and $3F) shl 6) or (Byte(s[i + 2]) and $3F);
        o[0] := '\'; o[1] := 'u';
        o[2] := HexDigits[(cp shr 12) and 15]; o[3] := HexDigits[(cp shr 8) and 15];
        o[4] := HexDigits[(cp shr 4) and 15]; o[5] := HexDigits[cp and 15];
        Inc(o, 6);
        Inc(i, 2);
      end
      else
      begin
        o^ := AnsiChar(c);
        Inc(o);
      end;
    end;
    Inc(i);
  end;
  o^ := '"';
end;

function JsonStr(const s: RawByteString): RawByteString;
begin
  Result := '';
  AppendJsonStr(Result, s);
end;

function IsValidUtf8(p: PByte; len: SizeInt): Boolean;
var
  i: SizeInt;
  c: Byte;
begin
  i := 0;
  while i < len do
  begin
    c := p[i];
    if c < $80 then
      Inc(i)
    else if (c and $E0) = $C0 then
    begin
      if (i + 1 >= len) or ((p[i + 1] and $C0) <> $80) or (c < $C2) then Exit(False);
      Inc(i, 2);
    end
    else if (c and $F0) = $E0 then
    begin
      if (i + 2 >= len) or ((p[i + 1] and $C0) <> $80) or ((p[i + 2] and $C0) <> $80) then Exit(False);
      if (c = $E0) and (p[i + 1] < $A0) then Exit(False); { overlong }
      if (c = $ED) and (p[i + 1] >= $A0) then Exit(False); { surrogate }
      Inc(i, 3);
    end
    else if (c and $F8) = $F0 then
    begin
      if (i + 3 >= len) or ((p[i + 1] and $C0) <> $80) or ((p[i + 2] and $C0) <> $80) or ((p[i + 3] and $C0) <> $80) then Exit(False);
      if (c = $F0) and (p[i + 1] < $90) then Exit(False); { overlong }
      if (c > $F4) or ((c = $F4) and (p[i + 1] >= $90)) then Exit(False); { > U+10FFFF }
      Inc(i, 4);
    end
    else
      Exit(False);
  end;
  Result := True;
end;

function DbText(const s: RawByteString): RawByteString;
var
  i, n: SizeInt;
  has: Boolean;
begin
  n := Length(s);
  has := False;
  for i := 1 to n - 2 do
    if (Byte(s[i]) = $ED) and (Byte(s[i + 1]) >= $A0) then
    begin
      has := True;
      Break;
    end;
  if not has then Exit(s);
  Result := '';
  i := 1;
  while i <= n do
  begin
    if (Byte(s[i]) = $ED) and (i + 2 <= n) and (Byte(s[i + 1]) >= $A0) then
    begin
      Result := Result + #$EF#$BF#$BD;
      Inc(i, 3);
    end
    else
    begin
      Result := Result + s[i];
      Inc(i);
    end;
  end;
end;

function Round3(x: Double): Double;
var
  y, r: Double;
begin
  if not (x > 0) then Exit(0);
  y := x * 1000;
  r := Int(y); { floor for y >= 0, without Floor's integer range }
  if y - r >= 0.5 then r := r + 1;
  Result := r / 1000;
end;

procedure BufAppend(var b: TByteBuf; p: Pointer; n: SizeInt);
var
  cap, need: SizeInt;
begin
  if n <= 0 then Exit;
  cap := Length(b.data);
  need := b.head + b.len + n;
  if need > cap then
  begin
    if (b.head > 0) and (b.len + n <= cap) then
    begin
      if b.len > 0 then Move(b.data[b.head], b.data[0], b.len);
      b.head := 0;
    end
    else
    begin
      if b.head > 0 then
      begin
        if b.len > 0 then Move(b.data[b.head], b.data[0], b.len);
        b.head := 0;
      end;
      need := b.len + n;
      cap := Max(cap * 2, 256);
      while cap < need do cap := cap * 2;
      SetLength(b.data, cap);
    end;
  end;
  Move(p^, b.data[b.head + b.len], n);
  Inc(b.len, n);
end;

procedure BufConsume(var b: TByteBuf; n: SizeInt);
begin
  if n >= b.len then
    BufClear(b)
  else
  begin
    Inc(b.head, n);
    Dec(b.len, n);
  end;
end;

procedure BufClear(var b: TByteBuf);
begin
  { an idle socket keeps no buffer: memory per socket is what the design note is about }
  SetLength(b.data, 0);
  b.head := 0;
  b.len := 0;
end;

function BufPtr(const b: TByteBuf): PByte;
begin
  Result := @b.data[b.head];
end;

end.
