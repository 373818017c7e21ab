{ HTTP/1.1 request heads, pure: enough of RFC 9112 for the upgrade and the GET routes of protocol
  v1 (section 6), with keep-alive and pipelined requests. Query strings are read as
  URLSearchParams reads them (first occurrence wins, '+' is a space, %XX decoded). }
unit wamihttp;

{$mode objfpc}{$H+}

interface

const
  MAX_HEAD_BYTES = 16384;

type
  THttpRequest = record
    method: RawByteString;
    target: RawByteString;
    path: RawByteString;  { target up to '?' or '#' }
    query: RawByteString; { after '?', up to '#' }
    http10: Boolean;
    keepAlive: Boolean;
    contentLength: Int64;
    chunked: Boolean;
    upgrade: Boolean;     { an Upgrade header with "upgrade" among the Connection tokens }
    upgradeValue: RawByteString;
    wsKey: RawByteString;
    wsVersion: RawByteString;
    hasWsVersion: Boolean;
  end;

{ Index just past the blank line ending the head (CRLFCRLF or LFLF), or -1 if not there yet. }
function FindHeadEnd(p: PAnsiChar; len: SizeInt): SizeInt;
{ Parses a complete head; false for a malformed one (answer 400 and close). }
function ParseRequestHead(p: PAnsiChar; len: SizeInt; out r: THttpRequest): Boolean;
function PercentDecode(const s: RawByteString; plusIsSpace: Boolean; out r: RawByteString): Boolean;
{ The one value of `name`; false when absent or repeated (a repeated board or user is a 400, as in
  protocol/parse.ts parseConnectQuery). }
function QueryGet(const query, name: RawByteString; out value: RawByteString): Boolean;
// /^\d{1,15}$/
function IsId15(const s: RawByteString): Boolean;
function StatusText(code: Integer): RawByteString;

implementation

uses
  SysUtils, StrUtils, wamiutil;

function SplitOn(const s: RawByteString; sep: AnsiChar): TStringArray;
var
  i, start, n: SizeInt;
begin
  Result := nil;
  n := 0;
  start := 1;
  for i := 1 to Length(s) + 1 do
    if (i > Length(s)) or (s[i] = sep) then
    begin
      SetLength(Result, n + 1);
      Result[n] := Copy(s, start, i - start);
      Inc(n);
      start := i + 1;
    end;
end;

function FindHeadEnd(p: PAnsiChar; len: SizeInt): SizeInt;
var
  i: SizeInt;
begin
  i := 0;
  while i < len do
  begin
    if p[i] = #10 then
    begin
      if (i + 1 < len) and (p[i + 1] = #10) then Exit(i + 2);
      if (i + 2 < len) and (p[i + 1] = #13) and (p[i + 2] = #10) then Exit(i + 3);
    end;
    Inc(i);
  end;
  Result := -1;
end;

function HasToken(const list, token: RawByteString): Boolean;
var
  parts: TStringArray;
  t: RawByteString;
begin
  parts := SplitOn(LowerCase(list), ',');
  for t in parts do
    if Trim(t) = token then Exit(True);
  Result := False;
end;

function ParseRequestHead(p: PAnsiChar; len: SizeInt; out r: THttpRequest): Boolean;
var
  lines: TStringArray;
  head, line, name, value, version, connection: RawByteString;
  i, sp1, sp2, colon, q: SizeInt;
  hasConnection: Boolean;
  cl: Int64;
begin
  Result := False;
  r.method := '';
  r.target := '';
  r.path := '';
  r.query := '';
  r.http10 := False;
  r.keepAlive := True;
  r.contentLength := 0;
  r.chunked := False;
  r.upgrade := False;
  r.upgradeValue := '';
  r.wsKey := '';
  r.wsVersion := '';
  r.hasWsVersion := False;
  SetString(head, p, len);
  head := StringReplace(head, #13#10, #10, [rfReplaceAll]);
  lines := SplitOn(head, #10);
  if Length(lines) < 1 then Exit;
  line := lines[0];
  sp1 := Pos(' ', line);
  if sp1 < 2 then Exit;
  sp2 := PosEx(' ', line, sp1 + 1);
  if sp2 <= sp1 + 1 then Exit;
  r.method := Copy(line, 1, sp1 - 1);
  r.target := Copy(line, sp1 + 1, sp2 - sp1 - 1);
  version := Copy(line, sp2 + 1, MaxInt);
  if version = 'HTTP/1.1' then r.http10 := False
  else if version = 'HTTP/1.0' then r.http10 := True
  else Exit;
  for i := 1 to Length(r.method) do
    if not (r.method[i] in ['A'..'Z', 'a'..'z', '0'..'9', '-', '_', '.', '!', '#', '$', '%', '&', '''', '*', '+', '^', '`', '|', '~']) then Exit;
  q := Pos('#', r.target);
  if q > 0 then r.target := Copy(r.target, 1, q - 1);
  q := Pos('?', r.target);
  if q > 0 then
  begin
    r.path := Copy(r.target, 1, q - 1);
    r.query := Copy(r.target, q + 1, MaxInt);
  end
  else
    r.path := r.target;
  hasConnection := False;
  connection := '';
  for i := 1 to High(lines) do
  begin
    line := lines[i];
    if line = '' then Continue;
    colon := Pos(':', line);
    if colon < 2 then Exit;
    name := LowerCase(Copy(line, 1, colon - 1));
    if name <> Trim(name) then Exit; { no whitespace before the colon }
    value := Trim(Copy(line, colon + 1, MaxInt));
    if name = 'connection' then
    begin
      if hasConnection then connection := connection + ', ' + value else connection := value;
      hasConnection := True;
    end
    else if name = 'upgrade' then r.upgradeValue := value
    else if name = 'sec-websocket-key' then r.wsKey := value
    else if name = 'sec-websocket-version' then
    begin
      r.wsVersion := value;
      r.hasWsVersion := True;
    end
    else if name = 'content-length' then
    begin
      if (value = '') or not TryStrToInt64(value, cl) or (cl < 0) or (value[1] in ['+', '-']) then Exit;
      r.contentLength := cl;
    end
    else if name = 'transfer-encoding' then
      r.chunked := HasToken(value, 'chunked');
  end;
  if r.http10 then
    r.keepAlive := hasConnection and HasToken(connection, 'keep-alive')
  else
    r.keepAlive := not (hasConnection and HasToken(connection, 'close'));
  r.upgrade := (r.upgradeValue <> '') and hasConnection and HasToken(connection, 'upgrade');
  Result := True;
end;

function PercentDecode(const s: RawByteString; plusIsSpace: Boolean; out r: RawByteString): Boolean;
var
  i, h1, h2: Integer;
begin
  r := '';
  Result := True;
  i := 1;
  while i <= Length(s) do
  begin
    if (s[i] = '%') and (i + 2 <= Length(s)) then
    begin
      h1 := HexVal(s[i + 1]);
      h2 := HexVal(s[i + 2]);
      if (h1 >= 0) and (h2 >= 0) then
      begin
        r := r + AnsiChar(h1 * 16 + h2);
        Inc(i, 3);
        Continue;
      end;
      Result := False; { a stray '%': URLSearchParams keeps it, decodeURIComponent throws }
      r := r + '%';
    end
    else if plusIsSpace and (s[i] = '+') then
      r := r + ' '
    else
      r := r + s[i];
    Inc(i);
  end;
end;

function QueryGet(const query, name: RawByteString; out value: RawByteString): Boolean;
var
  parts: TStringArray;
  part, k, v: RawByteString;
  eq: SizeInt;
begin
  value := '';
  Result := False;
  parts := SplitOn(query, '&');
  for part in parts do
  begin
    if part = '' then Continue;
    eq := Pos('=', part);
    if eq > 0 then
    begin
      PercentDecode(Copy(part, 1, eq - 1), True, k);
      PercentDecode(Copy(part, eq + 1, MaxInt), True, v);
    end
    else
    begin
      PercentDecode(part, True, k);
      v := '';
    end;
    if k = name then
    begin
      if Result then
      begin
        value := '';
        Exit(False);
      end;
      value := v;
      Result := True;
    end;
  end;
end;

function IsId15(const s: RawByteString): Boolean;
var
  i: Integer;
begin
  if (Length(s) < 1) or (Length(s) > 15) then Exit(False);
  for i := 1 to Length(s) do
    if not (s[i] in ['0'..'9']) then Exit(False);
  Result := True;
end;

function StatusText(code: Integer): RawByteString;
begin
  case code of
    101: Result := 'Switching Protocols';
    200: Result := 'OK';
    400: Result := 'Bad Request';
    404: Result := 'Not Found';
    405: Result := 'Method Not Allowed';
    426: Result := 'Upgrade Required';
    431: Result := 'Request Header Fields Too Large';
    500: Result := 'Internal Server Error';
    503: Result := 'Service Unavailable';
  else
    Result := 'Error';
  end;
end;

end.
