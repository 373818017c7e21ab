{ The event loop of the wami Pascal server: one thread, epoll (unit Linux), non-blocking sockets.
  It owns the sockets and the boards (board -> member sockets, seq in RAM, committed seq lease).
  A valid update gets its board's next seq and is broadcast at once from RAM to the board's other
  sockets (no SQL), then pushed onto the seed's TUpdateQueue; the TDatabaseWriterThread commits
  everything queued every flush interval, and the acks go out here when its result comes back.

  Sending: frames are appended to a socket's outbound buffer and every buffer touched in one loop
  turn is written once at the end of the turn (one send() per socket per turn, however many frames
  it got); what the kernel does not take waits for EPOLLOUT. A socket whose unsent bytes pass
  --max-buffered-bytes is closed with 4008 and dropped 2 s later if the close cannot be delivered. }
unit wamiserver;

{$mode objfpc}{$H+}

interface

type
  TServerOptions = record
    host: RawByteString;
    port: Integer;
    dbFile: RawByteString;
    flushIntervalMs: Integer;
    maxQueue: Int64;
    maxPayloadBytes: Int64;
    maxBufferedBytes: Int64;
    batchRetries: Integer;
    writerBusyTimeoutMs: Integer;
    leaseBlock: Int64;
  end;

{ Runs until SIGTERM/SIGINT (then stops gracefully). Returns the exit code: 0 after a graceful
  stop, 1 when it could not run, 2 for a user's mistake (port in use, bad database). }
function RunServer(const o: TServerOptions): Integer;

implementation

uses
  SysUtils, Classes, BaseUnix, Unix, UnixType, Linux, Sockets, ctypes, Math,
  wamiutil, wamijson, wamiws, wamihttp, wamiqueue, wamidb, wamiwriter, wamimetrics;

const
  CLOSE_WAIT_MS = 2000;   { a closing socket is dropped after this long (protocol: 4008, 1001) }
  HTTP_IDLE_MS = 5000;    { an HTTP connection (keep-alive, or a head that never completes) idle this long is closed, as Node's keepAliveTimeout }
  MAX_EVENTS = 1024;
  READ_CHUNK = 65536;
  TAG_LISTEN = Pointer(1);
  TAG_WAKE = Pointer(2);
  EPOLLRDHUP = $2000;

type
  TConnKind = (ckHttp, ckWs);

  TConn = class
  public
    fd: cint;
    kind: TConnKind;
    inbuf: TByteBuf;
    outbuf: TByteBuf;
    frag: TByteBuf;
    boardIdx: Integer;
    memberPos: Integer;
    user: Int64;
    refs: Integer;          { 1 while open + 1 per queued update of this sender }
    dead: Boolean;          { descriptor closed }
    closeSent: Boolean;     { a close frame is queued: no more application frames }
    discardInput: Boolean;  { after a protocol error or our close: read and drop }
    closeAfterFlush: Boolean;
    shutdownAfterFlush: Boolean;
    shutDone: Boolean;
    deadline: Double;       { > 0: drop the connection at this time }
    dirty: Boolean;
    wantOut: Boolean;
    inMessage: Boolean;
    fragOpcode: Byte;
    skip: Int64;            { HTTP body bytes to skip }
    lastActive: Double;     { HTTP: last read, for the idle timeout }
    prev, next: TConn;      { all connections }
  end;

  TBoard = record
    id: Int64;
    seq: Int64;        { last seq handed out }
    leaseHigh: Int64;  { committed seq_leases.high: no seq above it is handed out }
    members: array of TConn;
    memberCount: Integer;
    heldHead, heldTail: PUpdateItem;
    heldCount: Integer;
    leaseWanted: Boolean; { an ikLeaseWanted marker is queued }
  end;

var
  opts: TServerOptions;
  ep: cint = -1;
  listenFd: cint = -1;
  spareFd: cint = -1;
  wakeR: cint = -1;
  wakeW: cint = -1; { -1 until the pipe exists: a signal before that only sets sigFlag }
  readBuf: array[0..READ_CHUNK - 1] of Byte;
  boards: array of TBoard;
  boardDense: array of Integer;  { board id -> index + 1, when ids are dense }
  cardBoard: array of Integer;   { card id -> board index + 1, when ids are dense }
  cardIds: array of Int64;       { sparse fallback: sorted ids }
  cardIdxs: array of Integer;
  connHead: TConn = nil;
  wsCount: Int64 = 0;
  heldTotal: Int64 = 0;
  dirtyList: array of TConn;
  dirtyCount: Integer = 0;
  deadList: TList;
  closingList: TList;
  queue: TUpdateQueue;
  results: TResultQueue;
  writer: TDatabaseWriterThread;
  reader: TSqlDb;
  readCards: TSqlStmt;
  stopping: Boolean = False;
  finalDone: Boolean = False;
  closeAllAt: Double = 0;
  releaseOk: Boolean = True;
  releaseError: RawByteString = '';
  startedMs: Double;
  pidStr: RawByteString;
  lastAcceptLog: Double = 0;
  sigFlag: cint = 0;
  resultsPending: Boolean = False;

{ ---- lookups ------------------------------------------------------------------------------- }

function BoardIndexOf(id: Int64): Integer;
var
  lo, hi, mid: Integer;
begin
  if Length(boardDense) > 0 then
  begin
    if (id >= 0) and (id < Length(boardDense)) then Exit(boardDense[id] - 1);
    Exit(-1);
  end;
  lo := 0;
  hi := High(boards);
  while lo <= hi do
  begin
    mid := (lo + hi) div 2;
    if boards[mid].id = id then Exit(mid);
    if boards[mid].id < id then lo := mid + 1 else hi := mid - 1;
  end;
  Result := -1;
end;

function CardBoardIdx(card: Int64): Integer;
var
  lo, hi, mid: Integer;
begin
  if Length(cardBoard) > 0 then
  begin
    if (card >= 0) and (card < Length(cardBoard)) then Exit(cardBoard[card] - 1);
    Exit(-1);
  end;
  lo := 0;
  hi := High(cardIds);
  while lo <= hi do
  begin
    mid := (lo + hi) div 2;
    if cardIds[mid] = card then Exit(cardIdxs[mid]);
    if cardIds[mid] < card then lo := mid + 1 else hi := mid - 1;
  end;
  Result := -1;
end;

{ ---- logging ------------------------------------------------------------------------------- }

procedure Log(const s: RawByteString);
begin
  WriteLn(StdErr, 'wami-pascal: ', s);
  Flush(StdErr);
end;

{ ---- connections --------------------------------------------------------------------------- }

procedure EpollSet(c: TConn; op: cint; wantOut: Boolean);
var
  ev: EPoll_Event;
begin
  FillChar(ev, SizeOf(ev), 0);
  ev.Events := EPOLLIN or EPOLLRDHUP;
  if wantOut then ev.Events := ev.Events or EPOLLOUT;
  ev.Data.ptr := c;
  epoll_ctl(ep, op, c.fd, @ev);
end;

procedure MarkDirty(c: TConn); inline;
begin
  if c.dirty then Exit;
  c.dirty := True;
  if dirtyCount >= Length(dirtyList) then SetLength(dirtyList, dirtyCount * 2 + 64);
  dirtyList[dirtyCount] := c;
  Inc(dirtyCount);
end;

procedure SendRaw(c: TConn; p: Pointer; n: SizeInt);
begin
  if c.dead then Exit;
  BufAppend(c.outbuf, p, n);
  MarkDirty(c);
end;

procedure SendStr(c: TConn; const s: RawByteString); inline;
begin
  SendRaw(c, PAnsiChar(s), Length(s));
end;

{ An application frame: not after our close frame. }
procedure SendApp(c: TConn; const frame: RawByteString);
begin
  if c.dead or c.closeSent then Exit;
  SendRaw(c, PAnsiChar(frame), Length(frame));
end;

procedure DerefConn(c: TConn);
begin
  Dec(c.refs);
  if c.refs = 0 then
  begin
    BufClear(c.inbuf);
    BufClear(c.outbuf);
    BufClear(c.frag);
    c.Free;
  end;
end;

procedure RemoveMember(c: TConn);
var
  b: ^TBoard;
  last: TConn;
begin
  if (c.kind <> ckWs) or (c.boardIdx < 0) or (c.memberPos < 0) then Exit;
  b := @boards[c.boardIdx];
  last := b^.members[b^.memberCount - 1];
  b^.members[c.memberPos] := last;
  last.memberPos := c.memberPos;
  b^.members[b^.memberCount - 1] := nil;
  Dec(b^.memberCount);
  c.memberPos := -1;
  if b^.memberCount = 0 then SetLength(b^.members, 0);
  Dec(wsCount);
end;

procedure AddMember(c: TConn);
var
  b: ^TBoard;
begin
  b := @boards[c.boardIdx];
  if b^.memberCount >= Length(b^.members) then SetLength(b^.members, b^.memberCount * 2 + 4);
  b^.members[b^.memberCount] := c;
  c.memberPos := b^.memberCount;
  Inc(b^.memberCount);
  Inc(wsCount);
end;

{ Closes the descriptor now. The object lives on until the loop turn ends and no queued update
  refers to it. }
procedure CloseConn(c: TConn);
begin
  if c.dead then Exit;
  epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nil);
  fpClose(c.fd);
  c.dead := True;
  RemoveMember(c);
  if c.prev <> nil then c.prev.next := c.next else connHead := c.next;
  if c.next <> nil then c.next.prev := c.prev;
  c.prev := nil;
  c.next := nil;
  deadList.Add(c);
end;

procedure SetDeadline(c: TConn; ms: Double);
begin
  if c.deadline = 0 then
  begin
    closingList.Add(c);
    Inc(c.refs); { dropped when it leaves the closing list }
  end;
  if (c.deadline = 0) or (ms < c.deadline) then c.deadline := ms;
end;

{ Server-initiated close: the close frame goes out behind what is queued, then FIN; the peer's
  close (or EOF) ends it, or the deadline drops it. }
procedure CloseWs(c: TConn; code: Word; const reason: RawByteString);
begin
  if c.dead then Exit;
  if not c.closeSent then
  begin
    SendStr(c, BuildCloseFrame(code, reason));
    c.closeSent := True;
  end;
  c.discardInput := True;
  c.shutdownAfterFlush := True;
  SetDeadline(c, NowMs + CLOSE_WAIT_MS);
end;

procedure FlushConn(c: TConn);
var
  n: ssize_t;
  e: cint;
begin
  if c.dead then Exit;
  while c.outbuf.len > 0 do
  begin
    n := fpSend(c.fd, BufPtr(c.outbuf), c.outbuf.len, MSG_NOSIGNAL);
    if n > 0 then
      BufConsume(c.outbuf, n)
    else
    begin
      e := fpgeterrno;
      if (n < 0) and (e = ESysEINTR) then Continue;
      if (n < 0) and (e = ESysEAGAIN) then Break;
      CloseConn(c);
      Exit;
    end;
  end;
  if c.outbuf.len > 0 then
  begin
    if not c.wantOut then
    begin
      c.wantOut := True;
      EpollSet(c, EPOLL_CTL_MOD, True);
    end;
    if (c.kind = ckWs) and not c.closeSent and (c.outbuf.len > opts.maxBufferedBytes) then
    begin
      Inc(M.slowConsumerCloses);
      CloseWs(c, CLOSE_SLOW_CONSUMER, 'slow consumer');
      { the close frame waits behind the backlog: EPOLLOUT sends it if the peer ever reads }
    end;
  end
  else
  begin
    if c.wantOut then
    begin
      c.wantOut := False;
      EpollSet(c, EPOLL_CTL_MOD, False);
    end;
    if c.closeAfterFlush then
      CloseConn(c)
    else if c.shutdownAfterFlush and not c.shutDone then
    begin
      fpShutdown(c.fd, SHUT_WR);
      c.shutDone := True;
    end;
  end;
end;

procedure FlushDirty;
var
  i: Integer;
  c: TConn;
begin
  i := 0;
  { FlushConn can close (never adds to the list): iterate by index }
  while i < dirtyCount do
  begin
    c := dirtyList[i];
    c.dirty := False;
    FlushConn(c);
    dirtyList[i] := nil;
    Inc(i);
  end;
  dirtyCount := 0;
end;

{ ---- server frames ------------------------------------------------------------------------- }

procedure SendError(c: TConn; code: Integer; const msg: RawByteString; hasId: Boolean; const id: RawByteString);
var
  s: RawByteString;
begin
  CountError(code);
  if c.dead or c.closeSent then Exit;
  s := '{"type":"error",';
  if hasId then
  begin
    s := s + '"id":';
    AppendJsonStr(s, id);
    s := s + ',';
  end;
  s := s + '"code":"' + ERROR_CODES[code] + '","message":';
  AppendJsonStr(s, msg);
  s := s + '}';
  SendApp(c, BuildFrame(OP_TEXT, s));
end;

function BroadcastJson(it: PUpdateItem): RawByteString;
begin
  Result := '{"type":"update","id":';
  AppendJsonStr(Result, it^.id);
  Result := Result + ',"card":' + IntToStr(it^.card) + ',"column":"' + it^.column + '","title":';
  AppendJsonStr(Result, it^.title);
  Result := Result + ',"at":' + JsNumber(it^.at) + ',"sentAt":' + JsNumber(it^.sentAt) + ',"from":' + IntToStr(it^.user) +
    ',"seq":' + IntToStr(it^.seq) + '}';
end;

{ Gives the update its board's next seq, broadcasts it from RAM and queues it for the writer. }
procedure Admit(b: Integer; it: PUpdateItem);
var
  frame: RawByteString;
  i, n: Integer;
  mem: TConn;
  bd: ^TBoard;
begin
  bd := @boards[b];
  Inc(bd^.seq);
  it^.seq := bd^.seq;
  frame := BuildFrame(OP_TEXT, BroadcastJson(it));
  n := 0;
  for i := 0 to bd^.memberCount - 1 do
  begin
    mem := bd^.members[i];
    if (mem = TConn(it^.conn)) or mem.dead or mem.closeSent then Continue;
    BufAppend(mem.outbuf, PAnsiChar(frame), Length(frame));
    MarkDirty(mem);
    Inc(n);
  end;
  Inc(M.broadcastFrames, n);
  queue.Push(it);
end;

procedure PushLeaseMarker(b: Integer);
var
  mk: PUpdateItem;
begin
  New(mk);
  mk^.kind := ikLeaseWanted;
  mk^.boardIdx := b;
  mk^.boardId := boards[b].id;
  mk^.seq := boards[b].seq;
  mk^.conn := nil;
  mk^.next := nil;
  boards[b].leaseWanted := True;
  queue.PushLeaseWanted(mk);
end;

{ Admits a board's held updates while its committed lease allows; asks for more if still held. }
procedure ReleaseHeld(b: Integer);
var
  it: PUpdateItem;
  bd: ^TBoard;
begin
  bd := @boards[b];
  while (bd^.heldHead <> nil) and (bd^.seq < bd^.leaseHigh) do
  begin
    it := bd^.heldHead;
    bd^.heldHead := it^.next;
    if bd^.heldHead = nil then bd^.heldTail := nil;
    it^.next := nil;
    Dec(bd^.heldCount);
    Dec(heldTotal);
    Admit(b, it);
  end;
  if (bd^.heldHead <> nil) and not bd^.leaseWanted and not stopping then PushLeaseMarker(b);
end;

procedure OnUpdateFrame(c: TConn; p: PAnsiChar; n: SizeInt);
var
  receivedAt: Double;
  u: TClientUpdate;
  r: TParseResult;
  owner: Integer;
  it: PUpdateItem;
  bd: ^TBoard;
begin
  receivedAt := NowMs;
  r := ParseClientFrame(p, n, u);
  if not r.ok then
  begin
    SendError(c, EC_BAD_MESSAGE, r.message, r.hasId, r.id);
    Exit;
  end;
  Inc(M.updatesReceived);
  owner := CardBoardIdx(u.card);
  if owner <> c.boardIdx then
  begin
    if owner < 0 then
      SendError(c, EC_UNKNOWN_CARD, 'card ' + IntToStr(u.card) + ' does not exist', True, u.id)
    else
      SendError(c, EC_UNKNOWN_CARD, 'card ' + IntToStr(u.card) + ' is not on board ' + IntToStr(boards[c.boardIdx].id), True, u.id);
    Exit;
  end;
  if stopping then
  begin
    SendError(c, EC_OVERLOADED, 'server is shutting down', True, u.id);
    Exit;
  end;
  if queue.Count + heldTotal >= opts.maxQueue then
  begin
    SendError(c, EC_OVERLOADED, 'write queue is full (' + IntToStr(opts.maxQueue) + ' updates)', True, u.id);
    Exit;
  end;
  New(it);
  it^.kind := ikUpdate;
  it^.boardIdx := c.boardIdx;
  it^.boardId := boards[c.boardIdx].id;
  it^.seq := 0;
  it^.card := u.card;
  it^.user := c.user;
  it^.id := u.id;
  it^.column := COLUMNS[u.column];
  it^.title := u.title;
  it^.at := u.at;
  it^.sentAt := u.sentAt;
  it^.receivedAt := receivedAt;
  it^.conn := c;
  it^.next := nil;
  it^.ok := False;
  it^.attempts := 0;
  it^.error := '';
  Inc(c.refs);
  bd := @boards[c.boardIdx];
  if (bd^.heldCount > 0) or (bd^.seq >= bd^.leaseHigh) then
  begin
    { the board used up its committed lease: hold (no seq, no broadcast) until the writer commits more }
    if bd^.heldTail <> nil then bd^.heldTail^.next := it else bd^.heldHead := it;
    bd^.heldTail := it;
    Inc(bd^.heldCount);
    Inc(heldTotal);
    Inc(M.leaseHolds);
    if not bd^.leaseWanted then PushLeaseMarker(c.boardIdx);
  end
  else
    Admit(c.boardIdx, it);
end;

{ ---- WebSocket input ----------------------------------------------------------------------- }

procedure HandleMessage(c: TConn; opcode: Byte; p: PByte; n: SizeInt);
begin
  if (opcode = OP_TEXT) and not IsValidUtf8(p, n) then
  begin
    CloseWs(c, CLOSE_INVALID_PAYLOAD, 'invalid UTF-8 in a text frame');
    Exit;
  end;
  if c.closeSent then Exit;
  if opcode = OP_BINARY then
  begin
    SendError(c, EC_BAD_MESSAGE, 'binary frames are not accepted: send JSON in text frames', False, '');
    Exit;
  end;
  OnUpdateFrame(c, PAnsiChar(p), n);
end;

procedure HandleClose(c: TConn; p: PByte; n: SizeInt);
var
  code: Integer;
begin
  if n = 1 then
  begin
    CloseWs(c, CLOSE_PROTOCOL_ERROR, 'invalid close frame');
    Exit;
  end;
  code := 0;
  if n >= 2 then
  begin
    code := (p[0] shl 8) or p[1];
    if not IsValidCloseCode(code) then
    begin
      CloseWs(c, CLOSE_PROTOCOL_ERROR, 'invalid close code');
      Exit;
    end;
    if not IsValidUtf8(p + 2, n - 2) then
    begin
      CloseWs(c, CLOSE_INVALID_PAYLOAD, 'invalid UTF-8 in the close reason');
      Exit;
    end;
  end;
  if not c.closeSent then
  begin
    if n >= 2 then SendStr(c, BuildCloseFrame(code, '')) else SendStr(c, BuildFrame(OP_CLOSE, ''));
    c.closeSent := True;
  end;
  { the close handshake is complete: the server ends the TCP connection once the close is sent }
  c.discardInput := True;
  c.closeAfterFlush := True;
  SetDeadline(c, NowMs + CLOSE_WAIT_MS);
  MarkDirty(c);
end;

{ One frame at p; returns the bytes it used (0: incomplete). }
function ProcessWsFrame(c: TConn; p: PByte; avail: SizeInt): SizeInt;
var
  h: TFrameHeader;
  st: TFrameStatus;
  total: Int64;
  pl: PByte;
  fp: PByte;
begin
  Result := 0;
  st := ParseFrameHeader(p, avail, c.inMessage, c.frag.len, opts.maxPayloadBytes, h);
  if st = fsNeedMore then Exit(0);
  if st = fsError then
  begin
    CloseWs(c, h.closeCode, h.reason);
    Exit(avail);
  end;
  total := h.headerLen + h.payloadLen;
  if avail < total then Exit(0);
  pl := p + h.headerLen;
  Unmask(pl, h.payloadLen, h.mask);
  case h.opcode of
    OP_TEXT, OP_BINARY:
      if h.fin then
        HandleMessage(c, h.opcode, pl, h.payloadLen)
      else
      begin
        c.inMessage := True;
        c.fragOpcode := h.opcode;
        BufAppend(c.frag, pl, h.payloadLen);
      end;
    OP_CONT:
      begin
        BufAppend(c.frag, pl, h.payloadLen);
        if h.fin then
        begin
          c.inMessage := False;
          if c.frag.len > 0 then fp := BufPtr(c.frag) else fp := pl;
          HandleMessage(c, c.fragOpcode, fp, c.frag.len);
          BufClear(c.frag);
        end;
      end;
    OP_PING:
      if not c.closeSent then SendStr(c, BuildFrameFrom(OP_PONG, pl, h.payloadLen));
    OP_PONG: ;
    OP_CLOSE:
      HandleClose(c, pl, h.payloadLen);
  end;
  Result := total;
end;

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

{ Handles what can be handled of p[0..len-1]; returns the bytes used. }
function ProcessInput(c: TConn; p: PByte; len: SizeInt): SizeInt;
var
  pos, e, used: SizeInt;
  k: Int64;
  req: THttpRequest;
begin
  pos := 0;
  while (pos < len) and not c.dead and not c.discardInput do
  begin
    if c.kind = ckHttp then
    begin
      if c.skip > 0 then
      begin
        k := Min(c.skip, len - pos);
        Inc(pos, k);
        Dec(c.skip, k);
        Continue;
      end;
      e := FindHeadEnd(PAnsiChar(p + pos), len - pos);
      if e < 0 then
      begin
        if len - pos > MAX_HEAD_BYTES then
        begin
          FillChar(req, SizeOf(req), 0);
          req.keepAlive := False;
          req.method := 'GET';
          HttpRespond(c, 431, 'text/plain; charset=utf-8', 'request head too large'#10, req, '', True);
          Exit(len);
        end;
        Break;
      end;
      if not ParseRequestHead(PAnsiChar(p + pos), e, req) then
      begin
        FillChar(req, SizeOf(req), 0);
        req.keepAlive := False;
        req.method := 'GET';
        HttpRespond(c, 400, 'text/plain; charset=utf-8', 'malformed HTTP request'#10, req, '', True);
        Exit(len);
      end;
      Inc(pos, e);
      if not req.upgrade then c.skip := req.contentLength;
      HandleHttp(c, req);
    end
    else
    begin
      used := ProcessWsFrame(c, p + pos, len - pos);
      if used = 0 then Break;
      Inc(pos, used);
    end;
  end;
  if c.dead or c.discardInput then Exit(len);
  Result := pos;
end;

procedure ReadConn(c: TConn);
var
  n: ssize_t;
  used: SizeInt;
  e: cint;
begin
  n := fpRecv(c.fd, @readBuf[0], READ_CHUNK, 0);
  if n < 0 then
  begin
    e := fpgeterrno;
    if (e = ESysEAGAIN) or (e = ESysEINTR) then Exit;
    CloseConn(c);
    Exit;
  end;
  if n = 0 then
  begin
    CloseConn(c); { the peer closed: after our close frame this ends the handshake }
    Exit;
  end;
  if c.discardInput then Exit;
  if c.kind = ckHttp then c.lastActive := NowMs;
  if c.inbuf.len > 0 then
  begin
    BufAppend(c.inbuf, @readBuf[0], n);
    used := ProcessInput(c, BufPtr(c.inbuf), c.inbuf.len);
    if not c.dead then BufConsume(c.inbuf, used);
  end
  else
  begin
    used := ProcessInput(c, @readBuf[0], n);
    if (used < n) and not c.dead and not c.discardInput then BufAppend(c.inbuf, @readBuf[used], n - used);
  end;
end;

{ ---- accept -------------------------------------------------------------------------------- }

procedure AcceptAll;
var
  fd, one: cint;
  addr: TInetSockAddr;
  alen: TSockLen;
  c: TConn;
  e, k: cint;
begin
  for k := 1 to 512 do
  begin
    alen := SizeOf(addr);
    fd := fpAccept(listenFd, psockaddr(@addr), @alen);
    if fd < 0 then
    begin
      e := fpgeterrno;
      if (e = ESysEINTR) or (e = ESysECONNABORTED) then Continue;
      if (e = ESysEMFILE) or (e = ESysENFILE) then
      begin
        { out of descriptors: take the connection with the spare one and drop it, so the listen
          queue does not spin the loop; the client sees a reset }
        if spareFd >= 0 then
        begin
          fpClose(spareFd);
          fd := fpAccept(listenFd, nil, nil);
          if fd >= 0 then fpClose(fd);
          spareFd := fpOpen('/dev/null', O_RDONLY);
        end;
        if NowMs - lastAcceptLog > 10000 then
        begin
          lastAcceptLog := NowMs;
          Log('accept: out of file descriptors (' + IntToStr(wsCount) + ' WebSockets open); connection dropped, still serving');
        end;
      end;
      Exit;
    end;
    fpfcntl(fd, F_SETFL, fpfcntl(fd, F_GETFL) or O_NONBLOCK);
    one := 1;
    fpsetsockopt(fd, IPPROTO_TCP, TCP_NODELAY, @one, SizeOf(one));
    c := TConn.Create;
    c.fd := fd;
    c.kind := ckHttp;
    c.boardIdx := -1;
    c.memberPos := -1;
    c.refs := 1;
    c.lastActive := NowMs;
    c.next := connHead;
    if connHead <> nil then connHead.prev := c;
    connHead := c;
    EpollSet(c, EPOLL_CTL_ADD, False);
  end;
end;

{ ---- writer results ------------------------------------------------------------------------ }

procedure ProcessResults;
var
  list: TList;
  i, j: Integer;
  r: TBatchResult;
  it: PUpdateItem;
  c: TConn;
  queueMs: Double;
  s: RawByteString;
begin
  list := results.PopAll;
  try
    for i := 0 to list.Count - 1 do
    begin
      r := TBatchResult(list[i]);
      for j := 0 to High(r.tx) do
        if r.tx[j].ok then
        begin
          if r.tx[j].size > 0 then
          begin
            HistObserve(M.batchSize, r.tx[j].size);
            HistObserve(M.commitDuration, r.tx[j].durationMs / 1000);
          end
          else
            Inc(M.leaseCommits);
        end;
      Inc(M.sqliteBusy, r.busyHits);
      Inc(M.txRetries, r.retries);
      Inc(M.batchSplits, r.splits);
      for j := 0 to High(r.leases) do
        if r.leases[j].high > boards[r.leases[j].boardIdx].leaseHigh then
          boards[r.leases[j].boardIdx].leaseHigh := r.leases[j].high;
      for j := 0 to r.leaseWanted.Count - 1 do
      begin
        it := PUpdateItem(r.leaseWanted[j]);
        boards[it^.boardIdx].leaseWanted := False;
        Dispose(it);
      end;
      for j := 0 to r.items.Count - 1 do
      begin
        it := PUpdateItem(r.items[j]);
        c := TConn(it^.conn);
        HistObserve(M.txAttempts, it^.attempts);
        if it^.ok then
        begin
          Inc(M.updatesPersisted);
          queueMs := it^.startMs - it^.receivedAt;
          HistObserve(M.queueWait, Max(0, queueMs) / 1000);
          if not c.dead and not c.closeSent then
          begin
            s := '{"type":"ack","id":';
            AppendJsonStr(s, it^.id);
            s := s + ',"seq":' + IntToStr(it^.seq) + ',"queueMs":' + JsNumber(Round3(queueMs)) +
              ',"commitMs":' + JsNumber(Round3(it^.commitMs)) + ',"attempts":' + IntToStr(it^.attempts) + '}';
            SendApp(c, BuildFrame(OP_TEXT, s));
          end;
        end
        else
        begin
          Inc(M.broadcastUnpersisted);
          SendError(c, EC_WRITE_FAILED, 'update was broadcast as seq ' + IntToStr(it^.seq) + ' but could not be stored: ' +
            it^.error, True, it^.id);
        end;
        DerefConn(c);
        Dispose(it);
      end;
      if r.final then
      begin
        finalDone := True;
        releaseOk := r.releaseOk;
        releaseError := r.releaseError;
      end;
      r.Free;
    end;
  finally
    list.Free;
  end;
  if heldTotal > 0 then
    for i := 0 to High(boards) do
      if boards[i].heldCount > 0 then ReleaseHeld(i);
end;

{ ---- stop ---------------------------------------------------------------------------------- }

procedure BeginStop;
var
  i: Integer;
  it, nx: PUpdateItem;
  finals: array of Int64;
begin
  stopping := True;
  Log('SIGTERM: stopping gracefully (no new connections, OVERLOADED for new updates, flushing the queue)');
  if listenFd >= 0 then
  begin
    epoll_ctl(ep, EPOLL_CTL_DEL, listenFd, nil);
    fpClose(listenFd);
    listenFd := -1;
  end;
  { updates held for a lease were never broadcast: refuse them like any update arriving now }
  for i := 0 to High(boards) do
  begin
    it := boards[i].heldHead;
    while it <> nil do
    begin
      nx := it^.next;
      SendError(TConn(it^.conn), EC_OVERLOADED, 'server is shutting down', True, it^.id);
      DerefConn(TConn(it^.conn));
      Dispose(it);
      it := nx;
    end;
    boards[i].heldHead := nil;
    boards[i].heldTail := nil;
    boards[i].heldCount := 0;
  end;
  heldTotal := 0;
  SetLength(finals, Length(boards));
  for i := 0 to High(boards) do finals[i] := boards[i].seq;
  writer.RequestStop(finals);
end;

{ After the final flush: close every WebSocket with 1001 and every HTTP connection. }
procedure CloseAll;
var
  c, nx: TConn;
begin
  c := connHead;
  while c <> nil do
  begin
    nx := c.next;
    if c.kind = ckWs then
      CloseWs(c, CLOSE_GOING_AWAY, 'server shutting down')
    else if c.outbuf.len = 0 then
      CloseConn(c)
    else
    begin
      c.closeAfterFlush := True;
      c.discardInput := True;
    end;
    c := nx;
  end;
  closeAllAt := NowMs + CLOSE_WAIT_MS;
end;

{ ---- loop ---------------------------------------------------------------------------------- }

procedure CheckDeadlines;
var
  i: Integer;
  c: TConn;
  now: Double;
begin
  if closingList.Count = 0 then Exit;
  now := NowMs;
  i := 0;
  while i < closingList.Count do
  begin
    c := TConn(closingList[i]);
    if c.dead then
    begin
      closingList.Delete(i);
      DerefConn(c);
      Continue;
    end;
    if now >= c.deadline then
    begin
      CloseConn(c);
      closingList.Delete(i);
      DerefConn(c);
      Continue;
    end;
    Inc(i);
  end;
end;

function NextTimeoutMs: cint;
var
  i: Integer;
  t, now: Double;
begin
  if stopping then Exit(20);
  if closingList.Count = 0 then Exit(1000);
  now := NowMs;
  t := now + 1000;
  for i := 0 to closingList.Count - 1 do
    if TConn(closingList[i]).deadline < t then t := TConn(closingList[i]).deadline;
  Result := Max(0, Ceil(t - now));
end;

{ Once a second: HTTP connections idle past HTTP_IDLE_MS are closed (WebSockets are not: an idle
  board member is normal). }
var
  lastSweep: Double = 0;

procedure SweepIdleHttp;
var
  c, nx: TConn;
  now: Double;
begin
  now := NowMs;
  if now - lastSweep < 1000 then Exit;
  lastSweep := now;
  c := connHead;
  while c <> nil do
  begin
    nx := c.next;
    if (c.kind = ckHttp) and (c.outbuf.len = 0) and (now - c.lastActive > HTTP_IDLE_MS) then CloseConn(c);
    c := nx;
  end;
end;

procedure ReapDead;
var
  i: Integer;
begin
  for i := 0 to deadList.Count - 1 do DerefConn(TConn(deadList[i]));
  deadList.Clear;
end;

procedure OnSignal(sig: cint; info: PSigInfo; context: PSigContext); cdecl;
var
  b: Byte;
begin
  sigFlag := 1;
  b := 1;
  if wakeW >= 0 then fpWrite(wakeW, b, 1);
end;

procedure InstallSignals;
var
  na: SigActionRec;
begin
  FillChar(na, SizeOf(na), 0);
  na.sa_handler := SigActionHandler(@OnSignal);
  fpSigAction(SIGTERM, @na, nil);
  fpSigAction(SIGINT, @na, nil);
  FillChar(na, SizeOf(na), 0);
  na.sa_handler := SigActionHandler(SIG_IGN);
  fpSigAction(SIGPIPE, @na, nil);
end;

procedure DrainWake;
var
  buf: array[0..255] of Byte;
begin
  while fpRead(wakeR, buf, SizeOf(buf)) > 0 do ;
  resultsPending := True;
end;

procedure Loop;
var
  events: array[0..MAX_EVENTS - 1] of EPoll_Event;
  n, i: cint;
  tag: Pointer;
  ev: cuint32;
  c: TConn;
begin
  while True do
  begin
    n := epoll_wait(ep, @events[0], MAX_EVENTS, NextTimeoutMs);
    if n < 0 then
    begin
      if fpgeterrno = ESysEINTR then n := 0
      else
      begin
        Log('epoll_wait failed: errno ' + IntToStr(fpgeterrno));
        Exit;
      end;
    end;
    for i := 0 to n - 1 do
    begin
      tag := events[i].Data.ptr;
      ev := events[i].Events;
      if tag = TAG_LISTEN then
      begin
        if listenFd >= 0 then AcceptAll;
      end
      else if tag = TAG_WAKE then
        DrainWake
      else
      begin
        c := TConn(tag);
        if c.dead then Continue;
        if (ev and (EPOLLIN or EPOLLHUP or EPOLLRDHUP or EPOLLERR)) <> 0 then ReadConn(c);
        if not c.dead and ((ev and EPOLLOUT) <> 0) then FlushConn(c);
      end;
    end;
    if (sigFlag <> 0) and not stopping then BeginStop;
    if resultsPending then
    begin
      resultsPending := False;
      ProcessResults;
      if finalDone and (closeAllAt = 0) then CloseAll;
    end;
    FlushDirty;
    CheckDeadlines;
    SweepIdleHttp;
    ReapDead;
    if finalDone and (closeAllAt > 0) and ((connHead = nil) or (NowMs >= closeAllAt)) then
    begin
      while connHead <> nil do CloseConn(connHead);
      ReapDead;
      Exit;
    end;
  end;
end;

{ ---- start --------------------------------------------------------------------------------- }

procedure RaiseFdLimit;
var
  rl: TRLimit;
begin
  { like Node at start: the soft limit up to the hard one (the hard one is not ours to raise) }
  if FpGetRLimit(RLIMIT_NOFILE, @rl) = 0 then
    if rl.rlim_cur < rl.rlim_max then
    begin
      rl.rlim_cur := rl.rlim_max;
      FpSetRLimit(RLIMIT_NOFILE, @rl);
    end;
end;

function OpenListener(out err: RawByteString; out port: Integer): Boolean;
var
  addr: TInetSockAddr;
  alen: TSockLen;
  one: cint;
  ev: EPoll_Event;
  e: cint;
begin
  Result := False;
  port := 0;
  listenFd := fpSocket(AF_INET, SOCK_STREAM, 0);
  if listenFd < 0 then
  begin
    err := 'socket() failed: errno ' + IntToStr(fpgeterrno);
    Exit;
  end;
  one := 1;
  fpsetsockopt(listenFd, SOL_SOCKET, SO_REUSEADDR, @one, SizeOf(one));
  FillChar(addr, SizeOf(addr), 0);
  addr.sin_family := AF_INET;
  addr.sin_port := htons(opts.port);
  addr.sin_addr := StrToNetAddr(opts.host);
  if fpBind(listenFd, psockaddr(@addr), SizeOf(addr)) <> 0 then
  begin
    e := fpgeterrno;
    if e = ESysEADDRINUSE then err := 'port ' + IntToStr(opts.port) + ' on ' + opts.host + ' is in use'
    else if e = ESysEADDRNOTAVAIL then err := '--host ' + opts.host + ': no such local address'
    else if e = ESysEACCES then err := 'port ' + IntToStr(opts.port) + ': permission denied'
    else err := 'cannot listen on ' + opts.host + ':' + IntToStr(opts.port) + ': errno ' + IntToStr(e);
    Exit;
  end;
  if fpListen(listenFd, 4096) <> 0 then
  begin
    err := 'listen() failed: errno ' + IntToStr(fpgeterrno);
    Exit;
  end;
  fpfcntl(listenFd, F_SETFL, fpfcntl(listenFd, F_GETFL) or O_NONBLOCK);
  alen := SizeOf(addr);
  fpGetSockName(listenFd, psockaddr(@addr), @alen);
  port := ntohs(addr.sin_port);
  FillChar(ev, SizeOf(ev), 0);
  ev.Events := EPOLLIN;
  ev.Data.ptr := TAG_LISTEN;
  epoll_ctl(ep, EPOLL_CTL_ADD, listenFd, @ev);
  Result := True;
end;

function RunServer(const o: TServerOptions): Integer;
var
  why, err: RawByteString;
  wdb: TSqlDb;
  rows: TBoardRows;
  cards: TCardRows;
  i, b: Integer;
  maxId: Int64;
  ids, highs: array of Int64;
  lease: TSqlStmt;
  start: Int64;
  port: Integer;
  pfd: TFilDes;
  ev: EPoll_Event;
begin
  opts := o;
  startedMs := NowMs;
  pidStr := IntToStr(fpGetPid);
  { first: a SIGTERM during start-up is then a graceful stop right after it (the lease released) }
  InstallSignals;
  InitMetrics;
  why := CheckDatabase(opts.dbFile);
  if why <> '' then
  begin
    Log(why);
    Exit(2);
  end;
  wdb := nil;
  try
    wdb := TSqlDb.Open(opts.dbFile, False, opts.writerBusyTimeoutMs);
    wdb.Exec(SEQ_LEASES_SQL);
    { the first lease, before any socket: read and raise in one write transaction }
    wdb.Exec('BEGIN IMMEDIATE');
    try
      rows := LoadBoards(wdb);
      SetLength(boards, Length(rows));
      SetLength(ids, Length(rows));
      SetLength(highs, Length(rows));
      lease := wdb.Prepare(LEASE_UPSERT_SQL);
      try
        for i := 0 to High(rows) do
        begin
          start := Max(rows[i].seq, rows[i].leaseHigh);
          boards[i].id := rows[i].id;
          boards[i].seq := start;
          boards[i].leaseHigh := start + opts.leaseBlock;
          boards[i].memberCount := 0;
          boards[i].heldHead := nil;
          boards[i].heldTail := nil;
          boards[i].heldCount := 0;
          boards[i].leaseWanted := False;
          ids[i] := rows[i].id;
          highs[i] := boards[i].leaseHigh;
          lease.BindInt(1, rows[i].id);
          lease.BindInt(2, boards[i].leaseHigh);
          lease.Exec;
        end;
      finally
        lease.Free;
      end;
      wdb.Exec('COMMIT');
    except
      wdb.RollbackQuietly;
      raise;
    end;
    cards := LoadCards(wdb);
  except
    on e: Exception do
    begin
      Log('cannot load ' + opts.dbFile + ': ' + e.Message);
      wdb.Free;
      Exit(1);
    end;
  end;
  { dense lookups where ids allow (the seeded layout), binary search otherwise }
  maxId := 0;
  for i := 0 to High(boards) do if boards[i].id > maxId then maxId := boards[i].id;
  if (Length(boards) > 0) and (maxId <= 4 * Length(boards) + 1024) and (boards[0].id >= 0) then
  begin
    SetLength(boardDense, maxId + 1);
    for i := 0 to High(boards) do boardDense[boards[i].id] := i + 1;
  end;
  maxId := 0;
  for i := 0 to High(cards) do if cards[i].id > maxId then maxId := cards[i].id;
  if (Length(cards) > 0) and (maxId <= 4 * Length(cards) + 1024) and (cards[0].id >= 0) then
  begin
    SetLength(cardBoard, maxId + 1);
    for i := 0 to High(cards) do
    begin
      b := BoardIndexOf(cards[i].board);
      cardBoard[cards[i].id] := b + 1;
    end;
  end
  else
  begin
    SetLength(cardIds, Length(cards));
    SetLength(cardIdxs, Length(cards));
    for i := 0 to High(cards) do
    begin
      cardIds[i] := cards[i].id;
      cardIdxs[i] := BoardIndexOf(cards[i].board);
    end;
  end;
  cards := nil;
  rows := nil;

  try
    reader := TSqlDb.Open(opts.dbFile, True, 5000);
    readCards := reader.Prepare('SELECT id, col, title, version FROM cards WHERE board_id = ?1 ORDER BY id');
  except
    on e: Exception do
    begin
      Log('cannot open a reader on ' + opts.dbFile + ': ' + e.Message);
      wdb.Free;
      Exit(1);
    end;
  end;

  RaiseFdLimit;
  ep := epoll_create(1024);
  if fpPipe(pfd) <> 0 then
  begin
    Log('pipe() failed');
    Exit(1);
  end;
  wakeR := pfd[0];
  wakeW := pfd[1];
  fpfcntl(wakeR, F_SETFL, fpfcntl(wakeR, F_GETFL) or O_NONBLOCK);
  fpfcntl(wakeW, F_SETFL, fpfcntl(wakeW, F_GETFL) or O_NONBLOCK);
  FillChar(ev, SizeOf(ev), 0);
  ev.Events := EPOLLIN;
  ev.Data.ptr := TAG_WAKE;
  epoll_ctl(ep, EPOLL_CTL_ADD, wakeR, @ev);
  if not OpenListener(err, port) then
  begin
    Log(err);
    wdb.Free;
    Exit(2);
  end;
  spareFd := fpOpen('/dev/null', O_RDONLY);
  deadList := TList.Create;
  closingList := TList.Create;
  queue := TUpdateQueue.Create;
  results := TResultQueue.Create;
  writer := TDatabaseWriterThread.Create(wdb, queue, results, wakeW, opts.flushIntervalMs, opts.batchRetries,
    opts.leaseBlock, ids, highs);

  WriteLn('wami-pascal: config {"host":', JsonStr(opts.host), ',"port":', opts.port, ',"db":', JsonStr(opts.dbFile),
    ',"flushIntervalMs":', opts.flushIntervalMs, ',"maxQueue":', opts.maxQueue, ',"maxPayloadBytes":', opts.maxPayloadBytes,
    ',"maxBufferedBytes":', opts.maxBufferedBytes, ',"batchRetries":', opts.batchRetries, ',"writerBusyTimeoutMs":',
    opts.writerBusyTimeoutMs, ',"seqLeaseBlock":', opts.leaseBlock, ',"boards":', Length(boards), '}');
  WriteLn('wami-pascal: listening on ws://', opts.host, ':', port, '/ws (http://', opts.host, ':', port, ') pid ', pidStr);
  Flush(Output);

  Loop;

  writer.WaitFor;
  writer.Free;
  readCards.Free;
  reader.Free;
  if not releaseOk then
    Log('stopped; the seq leases could not be released (' + releaseError + '): the next start skips up to ' +
      IntToStr(opts.leaseBlock) + ' seqs per board, never reusing one');
  Log('stopped');
  Result := 0;
end;

end.
