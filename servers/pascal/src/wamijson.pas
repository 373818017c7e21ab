{ The strict parser of a client frame of wire protocol v1 (protocol/README.md section 2), a port of
  protocol/parse.ts's parseClientFrame with JSON.parse's grammar: the same checks in the same
  order, the same messages, `id` echoed where the TypeScript parser echoes it. Pure: no I/O.

  JSON.parse semantics kept: whitespace is space/tab/CR/LF only, numbers per RFC 8259 read as the
  nearest double (1e400 is Infinity, so not a time), a duplicate key's last value wins, key escapes
  are decoded (a "\u0074ype" key is "type"), lengths of strings are in UTF-16 code units. }
unit wamijson;

{$mode objfpc}{$H+}

interface

const
  MAX_FRAME_BYTES = 4096;
  MAX_TITLE_LENGTH = 200;
  MAX_ID_LENGTH = 64;
  COLUMN_COUNT = 5;
  COLUMNS: array[0..COLUMN_COUNT - 1] of RawByteString = ('backlog', 'todo', 'doing', 'review', 'done');

type
  TClientUpdate = record
    id: RawByteString;
    card: Int64;
    column: Integer; { index into COLUMNS }
    title: RawByteString;
    at, sentAt: Double;
  end;

  TParseResult = record
    ok: Boolean;
    message: RawByteString; { when not ok }
    hasId: Boolean;         { when not ok: the error frame carries `id` }
    id: RawByteString;
  end;

function ParseClientFrame(p: PAnsiChar; len: SizeInt; out u: TClientUpdate): TParseResult;

implementation

uses
  SysUtils, Math, wamiutil;

type
  TJKind = (jkNone, jkNull, jkBool, jkNumber, jkString, jkArray, jkObject);

  TJVal = record
    kind: TJKind;
    num: Double;
    str: RawByteString;
    u16: SizeInt; { string length in UTF-16 code units }
  end;

  TParser = record
    p, e: PAnsiChar; { current, end }
    depth: Integer;
  end;

const
  MAX_DEPTH = 10000;

procedure SkipWs(var ps: TParser); inline;
begin
  while (ps.p < ps.e) and (ps.p^ in [' ', #9, #10, #13]) do Inc(ps.p);
end;

procedure AppendBytes(var s: RawByteString; p: PAnsiChar; n: SizeInt);
var
  old: SizeInt;
begin
  if n <= 0 then Exit;
  old := Length(s);
  SetLength(s, old + n);
  Move(p^, s[old + 1], n);
end;

procedure PutCp(var s: RawByteString; cp: Cardinal);
begin
  if cp < $80 then s := s + AnsiChar(cp)
  else if cp < $800 then s := s + AnsiChar($C0 or (cp shr 6)) + AnsiChar($80 or (cp and $3F))
  else if cp < $10000 then
    s := s + AnsiChar($E0 or (cp shr 12)) + AnsiChar($80 or ((cp shr 6) and $3F)) + AnsiChar($80 or (cp and $3F))
  else
    s := s + AnsiChar($F0 or (cp shr 18)) + AnsiChar($80 or ((cp shr 12) and $3F)) + AnsiChar($80 or ((cp shr 6) and $3F)) +
      AnsiChar($80 or (cp and $3F));
end;

function Read4Hex(var ps: TParser; out v: Cardinal): Boolean;
var
  i, h: Integer;
begin
  v := 0;
  if ps.e - ps.p < 4 then Exit(False);
  for i := 0 to 3 do
  begin
    h := HexVal(ps.p[i]);
    if h < 0 then Exit(False);
    v := (v shl 4) or Cardinal(h);
  end;
  Inc(ps.p, 4);
  Result := True;
end;

{ At the opening quote. The input is valid UTF-8 (checked by the WebSocket layer). }
function ParseString(var ps: TParser; out s: RawByteString; out u16: SizeInt): Boolean;
var
  start: PAnsiChar;
  c: Byte;
  hi, lo: Cardinal;
  save: PAnsiChar;
begin
  Result := False;
  s := '';
  u16 := 0;
  Inc(ps.p);
  start := ps.p;
  while ps.p < ps.e do
  begin
    c := Byte(ps.p^);
    if c = Ord('"') then
    begin
      AppendBytes(s, start, ps.p - start);
      Inc(ps.p);
      Exit(True);
    end;
    if c < $20 then Exit(False);
    if c = Ord('\') then
    begin
      AppendBytes(s, start, ps.p - start);
      Inc(ps.p);
      if ps.p >= ps.e then Exit(False);
      case ps.p^ of
        '"': s := s + '"';
        '\': s := s + '\';
        '/': s := s + '/';
        'b': s := s + #8;
        'f': s := s + #12;
        'n': s := s + #10;
        'r': s := s + #13;
        't': s := s + #9;
        'u':
          begin
            Inc(ps.p);
            if not Read4Hex(ps, hi) then Exit(False);
            Dec(ps.p); { the loop's Inc below }
            if (hi >= $D800) and (hi <= $DBFF) then
            begin
              { a pair \uD8xx\uDCxx is one code point; anything else leaves a lone surrogate }
              save := ps.p;
              if (ps.e - ps.p >= 7) and (ps.p[1] = '\') and (ps.p[2] = 'u') then
              begin
                Inc(ps.p, 3);
                if Read4Hex(ps, lo) and (lo >= $DC00) and (lo <= $DFFF) then
                begin
                  Dec(ps.p);
                  PutCp(s, $10000 + ((hi - $D800) shl 10) + (lo - $DC00));
                  Inc(u16, 1); { plus the one below }
                end
                else
                begin
                  ps.p := save;
                  PutCp(s, hi);
                end;
              end
              else
                PutCp(s, hi);
            end
            else
              PutCp(s, hi);
          end;
      else
        Exit(False);
      end;
      Inc(u16);
      Inc(ps.p);
      start := ps.p;
      Continue;
    end;
    { count UTF-16 units: a 4-byte sequence is 2 units, continuation bytes none }
    if (c and $C0) <> $80 then
    begin
      if c >= $F0 then Inc(u16, 2) else Inc(u16);
    end;
    Inc(ps.p);
  end;
end;

function ParseNumber(var ps: TParser; out v: Double): Boolean;
var
  start: PAnsiChar;
begin
  Result := False;
  start := ps.p;
  if (ps.p < ps.e) and (ps.p^ = '-') then Inc(ps.p);
  if ps.p >= ps.e then Exit;
  if ps.p^ = '0' then Inc(ps.p)
  else if ps.p^ in ['1'..'9'] then
    while (ps.p < ps.e) and (ps.p^ in ['0'..'9']) do Inc(ps.p)
  else
    Exit;
  if (ps.p < ps.e) and (ps.p^ = '.') then
  begin
    Inc(ps.p);
    if (ps.p >= ps.e) or not (ps.p^ in ['0'..'9']) then Exit;
    while (ps.p < ps.e) and (ps.p^ in ['0'..'9']) do Inc(ps.p);
  end;
  if (ps.p < ps.e) and (ps.p^ in ['e', 'E']) then
  begin
    Inc(ps.p);
    if (ps.p < ps.e) and (ps.p^ in ['+', '-']) then Inc(ps.p);
    if (ps.p >= ps.e) or not (ps.p^ in ['0'..'9']) then Exit;
    while (ps.p < ps.e) and (ps.p^ in ['0'..'9']) do Inc(ps.p);
  end;
  Result := ParseJsDouble(start, ps.p - start, v);
end;

function ParseLiteral(var ps: TParser; const lit: RawByteString): Boolean;
var
  n: SizeInt;
begin
  n := Length(lit);
  Result := (ps.e - ps.p >= n) and CompareMem(ps.p, PAnsiChar(lit), n);
  if Result then Inc(ps.p, n);
end;

function ParseValue(var ps: TParser; out v: TJVal): Boolean; forward;

function SkipComposite(var ps: TParser; isObject: Boolean): Boolean;
var
  dummy: TJVal;
  key: RawByteString;
  u16: SizeInt;
  closer: AnsiChar;
begin
  Result := False;
  Inc(ps.depth);
  if ps.depth > MAX_DEPTH then Exit;
  if isObject then closer := '}' else closer := ']';
  Inc(ps.p);
  SkipWs(ps);
  if (ps.p < ps.e) and (ps.p^ = closer) then
  begin
    Inc(ps.p);
    Dec(ps.depth);
    Exit(True);
  end;
  while True do
  begin
    if isObject then
    begin
      if (ps.p >= ps.e) or (ps.p^ <> '"') then Exit;
      if not ParseString(ps, key, u16) then Exit;
      SkipWs(ps);
      if (ps.p >= ps.e) or (ps.p^ <> ':') then Exit;
      Inc(ps.p);
    end;
    if not ParseValue(ps, dummy) then Exit;
    SkipWs(ps);
    if ps.p >= ps.e then Exit;
    if ps.p^ = ',' then
    begin
      Inc(ps.p);
      SkipWs(ps);
      Continue;
    end;
    if ps.p^ = closer then
    begin
      Inc(ps.p);
      Dec(ps.depth);
      Exit(True);
    end;
    Exit;
  end;
end;

function ParseValue(var ps: TParser; out v: TJVal): Boolean;
begin
  Result := False;
  v.kind := jkNone;
  v.num := 0;
  v.str := '';
  v.u16 := 0;
  SkipWs(ps);
  if ps.p >= ps.e then Exit;
  case ps.p^ of
    '"':
      begin
        v.kind := jkString;
        Result := ParseString(ps, v.str, v.u16);
      end;
    '-', '0'..'9':
      begin
        v.kind := jkNumber;
        Result := ParseNumber(ps, v.num);
      end;
    't': begin v.kind := jkBool; Result := ParseLiteral(ps, 'true'); end;
    'f': begin v.kind := jkBool; Result := ParseLiteral(ps, 'false'); end;
    'n': begin v.kind := jkNull; Result := ParseLiteral(ps, 'null'); end;
    '[': begin v.kind := jkArray; Result := SkipComposite(ps, False); end;
    '{': begin v.kind := jkObject; Result := SkipComposite(ps, True); end;
  end;
end;

type
  TField = (fType, fId, fCard, fColumn, fTitle, fAt, fSentAt);

const
  FIELD_NAMES: array[TField] of RawByteString = ('type', 'id', 'card', 'column', 'title', 'at', 'sentAt');

function Bad(const msg: RawByteString): TParseResult;
begin
  Result.ok := False;
  Result.message := msg;
  Result.hasId := False;
  Result.id := '';
end;

function BadId(const msg: RawByteString; hasId: Boolean; const id: RawByteString): TParseResult;
begin
  Result := Bad(msg);
  Result.hasId := hasId;
  if hasId then Result.id := id;
end;

{ The first 32 UTF-16 units of s (JavaScript's s.slice(0, 32)); cuts no code point in half
  except a pair at the boundary, which slice would cut too (kept whole here). }
function Slice32(const s: RawByteString): RawByteString;
var
  i, units: SizeInt;
  c: Byte;
begin
  units := 0;
  i := 1;
  while (i <= Length(s)) do
  begin
    c := Byte(s[i]);
    if (c and $C0) <> $80 then
    begin
      if units >= 32 then Break;
      if c >= $F0 then Inc(units, 2) else Inc(units);
    end;
    Inc(i);
  end;
  Result := Copy(s, 1, i - 1);
end;

function IsTime(const v: TJVal): Boolean; inline;
begin
  Result := (v.kind = jkNumber) and not IsNan(v.num) and not IsInfinite(v.num) and (v.num >= 0);
end;

function ParseClientFrame(p: PAnsiChar; len: SizeInt; out u: TClientUpdate): TParseResult;
var
  ps: TParser;
  vals: array[TField] of TJVal;
  seen: array[TField] of Boolean;
  f, which: TField;
  found: Boolean;
  key, unknownKey, idv: RawByteString;
  ku16: SizeInt;
  v: TJVal;
  hasUnknown, hasId: Boolean;
  col, i: Integer;
  d: Double;
begin
  u.id := '';
  u.card := 0;
  u.column := -1;
  u.title := '';
  u.at := 0;
  u.sentAt := 0;
  if len > MAX_FRAME_BYTES then
    Exit(Bad('frame of ' + IntToStr(len) + ' bytes exceeds the limit of ' + IntToStr(MAX_FRAME_BYTES)));
  ps.p := p;
  ps.e := p + len;
  ps.depth := 0;
  for f := Low(TField) to High(TField) do
  begin
    seen[f] := False;
    vals[f].kind := jkNone;
  end;
  hasUnknown := False;
  unknownKey := '';
  SkipWs(ps);
  if (ps.p < ps.e) and (ps.p^ = '{') then
  begin
    { the top-level object: keep the v1 fields, remember the first unknown key }
    Inc(ps.p);
    SkipWs(ps);
    if (ps.p < ps.e) and (ps.p^ = '}') then
      Inc(ps.p)
    else
      while True do
      begin
        if (ps.p >= ps.e) or (ps.p^ <> '"') or not ParseString(ps, key, ku16) then
          Exit(Bad('frame is not valid JSON'));
        SkipWs(ps);
        if (ps.p >= ps.e) or (ps.p^ <> ':') then Exit(Bad('frame is not valid JSON'));
        Inc(ps.p);
        if not ParseValue(ps, v) then Exit(Bad('frame is not valid JSON'));
        found := False;
        which := fType;
        for f := Low(TField) to High(TField) do
          if key = FIELD_NAMES[f] then
          begin
            found := True;
            which := f;
            Break;
          end;
        if found then
        begin
          vals[which] := v;
          seen[which] := True;
        end
        else if not hasUnknown then
        begin
          hasUnknown := True;
          unknownKey := key;
        end;
        SkipWs(ps);
        if ps.p >= ps.e then Exit(Bad('frame is not valid JSON'));
        if ps.p^ = ',' then
        begin
          Inc(ps.p);
          SkipWs(ps);
          Continue;
        end;
        if ps.p^ = '}' then
        begin
          Inc(ps.p);
          Break;
        end;
        Exit(Bad('frame is not valid JSON'));
      end;
    SkipWs(ps);
    if ps.p <> ps.e then Exit(Bad('frame is not valid JSON'));
  end
  else
  begin
    if not ParseValue(ps, v) then Exit(Bad('frame is not valid JSON'));
    SkipWs(ps);
    if ps.p <> ps.e then Exit(Bad('frame is not valid JSON'));
    Exit(Bad('frame is not a JSON object'));
  end;

  hasId := seen[fId] and (vals[fId].kind = jkString) and (vals[fId].u16 > 0) and (vals[fId].u16 <= MAX_ID_LENGTH);
  if hasId then idv := vals[fId].str else idv := '';
  if not (seen[fType] and (vals[fType].kind = jkString) and (vals[fType].str = 'update')) then
  begin
    if seen[fType] and (vals[fType].kind = jkString) then
      Exit(BadId('unknown message type "' + Slice32(vals[fType].str) + '"', hasId, idv));
    Exit(BadId('missing "type"', hasId, idv));
  end;
  if hasUnknown then Exit(BadId('unknown field "' + Slice32(unknownKey) + '"', hasId, idv));
  if not (seen[fId] and (vals[fId].kind = jkString) and (vals[fId].u16 > 0)) then
    Exit(Bad('"id" must be a non-empty string'));
  if vals[fId].u16 > MAX_ID_LENGTH then Exit(Bad('"id" is longer than ' + IntToStr(MAX_ID_LENGTH) + ' characters'));
  d := vals[fCard].num;
  if not (seen[fCard] and (vals[fCard].kind = jkNumber) and not IsNan(d) and not IsInfinite(d) and (Frac(d) = 0) and
    (Abs(d) <= 9007199254740991.0) and (d > 0)) then
    Exit(BadId('"card" must be a positive integer', hasId, idv));
  col := -1;
  if seen[fColumn] and (vals[fColumn].kind = jkString) then
    for i := 0 to COLUMN_COUNT - 1 do
      if vals[fColumn].str = COLUMNS[i] then
      begin
        col := i;
        Break;
      end;
  if col < 0 then
    Exit(BadId('"column" must be one of backlog|todo|doing|review|done', hasId, idv));
  if not (seen[fTitle] and (vals[fTitle].kind = jkString)) then Exit(BadId('"title" must be a string', hasId, idv));
  if vals[fTitle].u16 > MAX_TITLE_LENGTH then
    Exit(BadId('"title" is longer than ' + IntToStr(MAX_TITLE_LENGTH) + ' characters', hasId, idv));
  if not (seen[fAt] and IsTime(vals[fAt])) then Exit(BadId('"at" must be a finite, non-negative number (ms)', hasId, idv));
  if not (seen[fSentAt] and IsTime(vals[fSentAt])) then
    Exit(BadId('"sentAt" must be a finite, non-negative number (ms)', hasId, idv));
  u.id := vals[fId].str;
  u.card := Trunc(d);
  u.column := col;
  u.title := vals[fTitle].str;
  u.at := vals[fAt].num;
  u.sentAt := vals[fSentAt].num;
  Result.ok := True;
  Result.message := '';
  Result.hasId := False;
  Result.id := '';
end;

end.
