{ The event loop of the wami Pascal server: one thread, epoll (unit Linux), non-blocking sockets,
  level-triggered; start-up (database, first seq leases, listener, writer thread), accept, the
  signals and the graceful stop. Connections: wamiconn; input: wamiinput; HTTP: wamiroutes;
  boards, updates and the writer's results: wamiboards; the writer: wamiwriter. }
unit wamiserver;

{$mode objfpc}{$H+}

interface

uses
  wamiconn;

{ Runs until SIGTERM/SIGINT (then stops gracefully). Returns the exit code: 0 after a graceful
  stop, 1 when it could not run, 2 for a user's mistake (port in use, bad database). }
function RunServer(const o: TServerOptions): Integer;

implementation

uses
  SysUtils, Classes, BaseUnix, Unix, Linux, Sockets, ctypes,
  wamiutil, wamiqueue, wamidb, wamiwriter, wamimetrics, wamiboards, wamiroutes, wamiinput;

const
  MAX_EVENTS = 1024;
  TAG_LISTEN = Pointer(1);
  TAG_WAKE = Pointer(2);

var
  listenFd: cint = -1;
  spareFd: cint = -1;
  wakeR: cint = -1;
  wakeW: cint = -1; { -1 until the pipe exists: a signal before that only sets sigFlag }
  writer: TDatabaseWriterThread;
  reader: TSqlDb;
  closeAllAt: Double = 0;
  lastAcceptLog: Double = 0;
  sigFlag: cint = 0;
  resultsPending: Boolean = False;

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

{ ---- stop ---------------------------------------------------------------------------------- }

{ SIGTERM/SIGINT: no new connections, OVERLOADED for held and new updates (wamiboards), and the
  writer drains, commits and releases the leases; CloseAll follows its final result. }
procedure BeginStop;
begin
  stopping := True;
  Log('SIGTERM: stopping gracefully (no new connections, OVERLOADED for new updates, flushing the queue)');
  if listenFd >= 0 then
  begin
    epoll_ctl(ep, EPOLL_CTL_DEL, listenFd, nil);
    fpClose(listenFd);
    listenFd := -1;
  end;
  writer.RequestStop(RefuseHeldAndFinalSeqs);
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
    n := epoll_wait(ep, @events[0], MAX_EVENTS, NextTimeoutMs(stopping));
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
      if finalDone and (closeAllAt = 0) then
      begin
        CloseAll;
        closeAllAt := NowMs + CLOSE_WAIT_MS;
      end;
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
  ids, highs: TInt64s;
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
    OpenBoards(wdb, opts.leaseBlock, ids, highs);
    IndexCards(LoadCards(wdb));
  except
    on e: Exception do
    begin
      Log('cannot load ' + opts.dbFile + ': ' + e.Message);
      wdb.Free;
      Exit(1);
    end;
  end;

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

