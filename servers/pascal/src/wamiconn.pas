{ Connections of the wami Pascal server's event loop: the per-socket state, the outbound buffers
  and their flush, closing (hard, after a flush, or a WebSocket close with a bounded wait), the
  slow-consumer bound, idle HTTP connections, and error frames. No board logic: a WebSocket's
  board membership is dropped through OnConnClosed.

  Sending: frames are appended to a socket's outbound buffer and every buffer touched in one loop
  turn is written once at the end of the turn (FlushDirty: one send() per socket per turn, however
  many frames it got); what the kernel does not take waits for EPOLLOUT. A socket whose unsent bytes
  pass --max-buffered-bytes is closed with 4008 and dropped 2 s later if the close cannot be
  delivered. A connection object outlives its descriptor while queued updates refer to it (refs). }
unit wamiconn;

{$mode objfpc}{$H+}

interface

uses
  Classes, ctypes, wamiutil;

const
  CLOSE_WAIT_MS = 2000;   { a closing socket is dropped after this long (protocol: 4008, 1001) }
  HTTP_IDLE_MS = 5000;    { an HTTP connection (keep-alive, or a head that never completes) idle this long is closed, as Node's keepAliveTimeout }
  EPOLLRDHUP = $2000;

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


var
  opts: TServerOptions;
  ep: cint = -1;
  connHead: TConn = nil;   { every open connection }
  wsCount: Int64 = 0;      { open WebSockets }
  deadList: TList;         { closed this turn, released at its end }
  closingList: TList;      { connections with a deadline }
  startedMs: Double;
  pidStr: RawByteString;
  { called once when a connection's descriptor is closed (the boards drop a WebSocket member) }
  OnConnClosed: procedure(c: TConn) = nil;

procedure Log(const s: RawByteString);
procedure EpollSet(c: TConn; op: cint; wantOut: Boolean);
procedure MarkDirty(c: TConn); inline;
procedure SendRaw(c: TConn; p: Pointer; n: SizeInt);
procedure SendStr(c: TConn; const s: RawByteString); inline;
procedure SendApp(c: TConn; const frame: RawByteString);
procedure DerefConn(c: TConn);
procedure CloseConn(c: TConn);
procedure SetDeadline(c: TConn; ms: Double);
procedure CloseWs(c: TConn; code: Word; const reason: RawByteString);
procedure FlushConn(c: TConn);
procedure FlushDirty;
procedure SendError(c: TConn; code: Integer; const msg: RawByteString; hasId: Boolean; const id: RawByteString);
procedure CloseAll;
procedure CheckDeadlines;
function NextTimeoutMs(stopping: Boolean): cint;
procedure SweepIdleHttp;
procedure ReapDead;

implementation

uses
  SysUtils, BaseUnix, Linux, Sockets, Math, wamiws, wamimetrics;

var
  dirtyList: array of TConn;
  dirtyCount: Integer = 0;
  lastSweep: Double = 0;

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

{ Closes the descriptor now. The object lives on until the loop turn ends and no queued update
  refers to it. }
procedure CloseConn(c: TConn);
begin
  if c.dead then Exit;
  epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nil);
  fpClose(c.fd);
  c.dead := True;
  if Assigned(OnConnClosed) then OnConnClosed(c);
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

{ ---- error frames -------------------------------------------------------------------------- }

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
end;

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

function NextTimeoutMs(stopping: Boolean): cint;
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


end.
