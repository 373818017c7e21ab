{ The boards of the wami Pascal server (event-loop thread only): board -> member sockets, the seq
  in RAM and the committed seq lease, card -> board from RAM. A valid update gets its board's next
  seq and is broadcast at once from RAM to the board's other sockets (no SQL), then pushed onto the
  seed's TUpdateQueue; a board at the end of its committed lease holds its updates until the writer
  commits more (see README.md, "Seq lease"). The writer's results come back here: acks,
  WRITE_FAILED, new leases, and the release of held updates. }
unit wamiboards;

{$mode objfpc}{$H+}

interface

uses
  wamiqueue, wamidb, wamiconn;

type
  TInt64s = array of Int64;

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
  boards: array of TBoard;
  heldTotal: Int64 = 0;      { updates held for a lease, all boards }
  queue: TUpdateQueue;
  results: TResultQueue;
  stopping: Boolean = False;
  finalDone: Boolean = False; { the writer's final result (queue drained, leases released) is in }
  releaseOk: Boolean = True;
  releaseError: RawByteString = '';

function BoardIndexOf(id: Int64): Integer;
function CardBoardIdx(card: Int64): Integer;
procedure RemoveMember(c: TConn);
procedure AddMember(c: TConn);
function BroadcastJson(it: PUpdateItem): RawByteString;
procedure Admit(b: Integer; it: PUpdateItem);
procedure PushLeaseMarker(b: Integer);
procedure ReleaseHeld(b: Integer);
procedure OnUpdateFrame(c: TConn; p: PAnsiChar; n: SizeInt);
procedure ProcessResults;
function RefuseHeldAndFinalSeqs: TInt64s;
procedure OpenBoards(wdb: TSqlDb; leaseBlock: Int64; out ids, highs: TInt64s);
procedure IndexCards(const cards: TCardRows);

implementation

uses
  SysUtils, Classes, Math, wamiutil, wamijson, wamiws, wamimetrics;

var
  boardDense: array of Integer;  { board id -> index + 1, when ids are dense }
  cardBoard: array of Integer;   { card id -> board index + 1, when ids are dense }
  cardIds: array of Int64;       { sparse fallback: sorted ids }
  cardIdxs: array of Integer;

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

{ Updates held for a lease were never broadcast: on stop they are refused like any update arriving
  now. Returns the highest seq handed out per board (for the lease release). }
function RefuseHeldAndFinalSeqs: TInt64s;
var
  i: Integer;
  it, nx: PUpdateItem;
begin
  Result := nil;
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
  SetLength(Result, Length(boards));
  for i := 0 to High(boards) do Result[i] := boards[i].seq;
end;

{ ---- start --------------------------------------------------------------------------------- }

{ In one write transaction on the writer's connection: every board with its next seq
  max(boards.seq, high) + 1 and its first lease committed (high := that - 1 + leaseBlock), before
  any socket. Returns the ids and committed highs by board index, for the writer. }
procedure OpenBoards(wdb: TSqlDb; leaseBlock: Int64; out ids, highs: TInt64s);
var
  rows: TBoardRows;
  lease: TSqlStmt;
  i: Integer;
  start: Int64;
begin
  wdb.Exec(SEQ_LEASES_SQL);
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
        boards[i].leaseHigh := start + leaseBlock;
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
end;

{ Card -> board from RAM (cards never move): dense arrays where the ids allow (the seeded layout),
  binary search otherwise. Call after OpenBoards. }
procedure IndexCards(const cards: TCardRows);
var
  i: Integer;
  maxId: Int64;
begin
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
    for i := 0 to High(cards) do cardBoard[cards[i].id] := BoardIndexOf(cards[i].board) + 1;
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
end;

initialization
  OnConnClosed := @RemoveMember;
end.
