{ The HTTP side of the wami Pascal server (protocol v1 sections 1 and 6): the WebSocket handshake
  (400/404/503, then the RFC 6455 checks, then 101), GET /healthz, /metrics, /boards/:id (from
  SQLite through a read-only connection), 405/426/404, keep-alive or close. }
unit wamiroutes;

{$mode objfpc}{$H+}

interface

uses
  wamihttp, wamidb, wamiconn;

var
  readCards: TSqlStmt; { SELECT id, col, title, version FROM cards WHERE board_id = ?1 ORDER BY id }

procedure HttpRespond(c: TConn; status: Integer; const ctype, body: RawByteString; const req: THttpRequest;
  const extraHeaders: RawByteString; forceClose: Boolean);
procedure HttpJson(c: TConn; status: Integer; const body: RawByteString; const req: THttpRequest; const extra: RawByteString = '');
function ErrorJson(const msg: RawByteString): RawByteString;
procedure RejectUpgrade(c: TConn; status: Integer; const reason: RawByteString; const req: THttpRequest);
function WalBytes: Int64;
function HealthJson: RawByteString;
function MetricsText: RawByteString;
function BoardJson(b: Integer): RawByteString;
procedure HandleUpgrade(c: TConn; const req: THttpRequest);
procedure HandleHttp(c: TConn; const req: THttpRequest);

implementation

uses
  SysUtils, BaseUnix, wamiutil, wamiws, wamiboards, wamimetrics;

{ ---- HTTP ---------------------------------------------------------------------------------- }

procedure HttpRespond(c: TConn; status: Integer; const ctype, body: RawByteString; const req: THttpRequest;
  const extraHeaders: RawByteString; forceClose: Boolean);
var
  s: RawByteString;
  closeIt: Boolean;
begin
  closeIt := forceClose or not req.keepAlive;
  s := 'HTTP/1.1 ' + IntToStr(status) + ' ' + StatusText(status) + #13#10 +
    'Content-Type: ' + ctype + #13#10 +
    'Content-Length: ' + IntToStr(Length(body)) + #13#10 + extraHeaders;
  if closeIt then s := s + 'Connection: close'#13#10 else s := s + 'Connection: keep-alive'#13#10;
  s := s + #13#10;
  if req.method <> 'HEAD' then s := s + body;
  SendStr(c, s);
  if closeIt then
  begin
    c.closeAfterFlush := True;
    c.discardInput := True;
  end;
end;

procedure HttpJson(c: TConn; status: Integer; const body: RawByteString; const req: THttpRequest; const extra: RawByteString = '');
begin
  HttpRespond(c, status, 'application/json; charset=utf-8', body, req, extra, False);
end;

function ErrorJson(const msg: RawByteString): RawByteString;
begin
  Result := '{"error":' + JsonStr(msg) + '}';
end;

{ A refused upgrade: plain text, then close (no WebSocket exists). }
procedure RejectUpgrade(c: TConn; status: Integer; const reason: RawByteString; const req: THttpRequest);
begin
  HttpRespond(c, status, 'text/plain; charset=utf-8', reason + #10, req, '', True);
end;

function WalBytes: Int64;
var
  st: TStat;
begin
  if fpStat(opts.dbFile + '-wal', st) = 0 then Result := st.st_size else Result := 0;
end;

function HealthJson: RawByteString;
begin
  Result := '{"status":"ok","variant":"pascal","protocol":1,"pid":' + pidStr +
    ',"connections":' + IntToStr(wsCount) +
    ',"queueDepth":' + IntToStr(queue.Count + heldTotal) +
    ',"boards":' + IntToStr(Length(boards)) +
    ',"uptimeSec":' + IntToStr(Round((NowMs - startedMs) / 1000)) +
    ',"seqLeaseBlock":' + IntToStr(opts.leaseBlock) +
    ',"heldUpdates":' + IntToStr(heldTotal) + '}';
end;

function MetricsText: RawByteString;
var
  g: TGauges;
begin
  g.connections := wsCount;
  g.queueDepth := queue.Count + heldTotal;
  g.held := heldTotal;
  g.walBytes := WalBytes;
  Result := RenderMetrics(g);
end;

function BoardJson(b: Integer): RawByteString;
var
  first: Boolean;
begin
  Result := '{"id":' + IntToStr(boards[b].id) + ',"cards":[';
  first := True;
  readCards.Reset;
  readCards.BindInt(1, boards[b].id);
  try
    while readCards.Step do
    begin
      if not first then Result := Result + ',';
      first := False;
      Result := Result + '{"id":' + IntToStr(readCards.ColInt(0)) + ',"column":';
      AppendJsonStr(Result, readCards.ColText(1));
      Result := Result + ',"title":';
      AppendJsonStr(Result, readCards.ColText(2));
      Result := Result + ',"version":' + IntToStr(readCards.ColInt(3)) + '}';
    end;
  finally
    readCards.Reset;
  end;
  Result := Result + ']}';
end;

procedure HandleUpgrade(c: TConn; const req: THttpRequest);
var
  v: RawByteString;
  board, user: Int64;
  b: Integer;
  resp: RawByteString;
begin
  if stopping then
  begin
    RejectUpgrade(c, 503, 'server is shutting down', req);
    Exit;
  end;
  if req.path <> '/ws' then
  begin
    RejectUpgrade(c, 404, 'no WebSocket endpoint at ' + Copy(req.path, 1, 64) + '; use /ws', req);
    Exit;
  end;
  if not (QueryGet(req.query, 'board', v) and IsId15(v)) then
  begin
    RejectUpgrade(c, 400, 'missing or invalid "board" (an integer)', req);
    Exit;
  end;
  board := StrToInt64(v);
  if not (QueryGet(req.query, 'user', v) and IsId15(v)) then
  begin
    RejectUpgrade(c, 400, 'missing or invalid "user" (an integer)', req);
    Exit;
  end;
  user := StrToInt64(v);
  b := BoardIndexOf(board);
  if b < 0 then
  begin
    RejectUpgrade(c, 404, 'unknown board ' + IntToStr(board), req);
    Exit;
  end;
  if req.method <> 'GET' then
  begin
    RejectUpgrade(c, 400, 'Invalid HTTP method', req);
    Exit;
  end;
  if LowerCase(req.upgradeValue) <> 'websocket' then
  begin
    RejectUpgrade(c, 400, 'Invalid Upgrade header', req);
    Exit;
  end;
  if not IsValidWsKey(req.wsKey) then
  begin
    RejectUpgrade(c, 400, 'Missing or invalid Sec-WebSocket-Key header', req);
    Exit;
  end;
  if not (req.hasWsVersion and ((req.wsVersion = '13') or (req.wsVersion = '8'))) then
  begin
    RejectUpgrade(c, 400, 'Missing or invalid Sec-WebSocket-Version header', req);
    Exit;
  end;
  resp := 'HTTP/1.1 101 Switching Protocols'#13#10'Upgrade: websocket'#13#10'Connection: Upgrade'#13#10 +
    'Sec-WebSocket-Accept: ' + AcceptKey(req.wsKey) + #13#10 + 'X-Wami-Pid: ' + pidStr + #13#10#13#10;
  SendStr(c, resp);
  c.kind := ckWs;
  c.boardIdx := b;
  c.user := user;
  AddMember(c);
end;

procedure HandleHttp(c: TConn; const req: THttpRequest);
var
  raw, idText: RawByteString;
  okDecode: Boolean;
  b: Integer;
begin
  if req.upgrade then
  begin
    HandleUpgrade(c, req);
    Exit;
  end;
  if req.chunked then
  begin
    { a GET route takes no body, and we do not read chunked ones: answer and close }
    c.closeAfterFlush := True;
    c.discardInput := True;
  end;
  if stopping then
  begin
    HttpRespond(c, 503, 'application/json; charset=utf-8', ErrorJson('server is shutting down'), req, '', True);
    Exit;
  end;
  if (req.method <> 'GET') and (req.method <> 'HEAD') then
  begin
    HttpJson(c, 405, ErrorJson('method ' + req.method + ' not allowed'), req, 'Allow: GET, HEAD'#13#10);
    Exit;
  end;
  if req.path = '/healthz' then
    HttpJson(c, 200, HealthJson, req)
  else if req.path = '/metrics' then
    HttpRespond(c, 200, 'text/plain; version=0.0.4; charset=utf-8', MetricsText, req, '', False)
  else if (Copy(req.path, 1, 8) = '/boards/') and (Pos('/', Copy(req.path, 9, MaxInt)) = 0) and (Length(req.path) > 8) then
  begin
    raw := Copy(req.path, 9, MaxInt);
    okDecode := PercentDecode(raw, False, idText);
    if not okDecode or not IsId15(idText) then
      HttpJson(c, 400, ErrorJson('board id must be a non-negative integer, got "' + Copy(idText, 1, 32) + '"'), req)
    else
    begin
      b := BoardIndexOf(StrToInt64(idText));
      if b < 0 then
        HttpJson(c, 404, ErrorJson('unknown board ' + idText), req)
      else
        try
          HttpJson(c, 200, BoardJson(b), req);
        except
          on e: Exception do HttpJson(c, 500, ErrorJson(e.Message), req);
        end;
    end;
  end
  else if req.path = '/ws' then
    HttpJson(c, 426, ErrorJson('WebSocket endpoint: connect with Upgrade: websocket'), req)
  else
    HttpJson(c, 404, ErrorJson('no route for ' + Copy(req.path, 1, 64)), req);
end;

end.
