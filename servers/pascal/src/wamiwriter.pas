{ The seed's TDatabaseWriterThread: every flush interval it takes everything queued (PopAll) and
  commits it as one transaction: per update one `cards` UPDATE + one `card_events` INSERT,
  `boards.seq` raised to the batch's highest seq per board, and the seq leases extended, all in the
  same transaction. Unlike the seed's `except Rollback`, a failed batch is not dropped: it is retried
  and then split in halves (wamisplit), so only the rows that fail on their own are reported failed
  (the event loop answers them WRITE_FAILED). The outcome goes back to the event loop through a
  result queue and a wake-up pipe; acks are sent there, after the commit.

  Seq leases (see README.md): a board's seq may be broadcast only while it is <= the board's
  committed `seq_leases.high`. For every board in the batch whose headroom (high - highest seq
  handed out) fell below LEASE_BLOCK/2, the same transaction raises high to that seq + LEASE_BLOCK.
  Boards whose updates wait for a lease send a marker (ikLeaseWanted) so the writer extends their
  lease even when they have no row in the batch. On stop: drain the queue, then release every
  lease to the highest seq handed out (boards.seq), so a clean restart leaves no gap. }
unit wamiwriter;

{$mode objfpc}{$H+}

interface

uses
  Classes, SysUtils, SyncObjs, wamiqueue, wamidb, wamisplit;

type
  TDatabaseWriterThread = class(TThread)
  private
    FDb: TSqlDb;
    FQueue: TUpdateQueue;
    FResults: TResultQueue;
    FWakeFd: LongInt;
    FIntervalMs: Integer;
    FRetries: Integer;
    FLeaseBlock: Int64;
    FBoardIds: array of Int64;
    FHigh: array of Int64;
    FEvent: PRTLEvent;
    FLock: TCriticalSection;
    FStopRequested: Boolean;
    FFinalSeqs: array of Int64;
    FUpdCard, FInsEvent, FRaiseSeq, FLease, FRelease: TSqlStmt;
    { per batch }
    FRows: array of PUpdateItem;
    FRowCount: Integer;
    FGrants: array of TLeaseGrant;
    FGrantCount: Integer;
    FLeasesDone: Boolean;
    FMaxSeq: array of Int64;
    FTouched: array of Integer;
    FRangeMax: array of Int64;
    FRangeTouched: array of Integer;
    FTouchedCount: Integer;
    function StopRequested: Boolean;
    procedure Touch(b: Integer; seq: Int64);
    procedure ClearTouched;
    procedure RaiseBoardSeqs(lo, hi: Integer);
    procedure WriteLeases;
    function TryCommit(lo, hi: Integer): TTryOutcome;
    function CommitLeasesOnly: TTryOutcome;
    procedure ProcessBatch(list, wanted: TList);
    procedure ReleaseLeases(r: TBatchResult);
    procedure Post(r: TBatchResult);
  protected
    procedure Execute; override;
  public
    { `db` is the writer's own connection (the thread owns it from now on); `highs`: the leases
      committed at start, by board index. }
    constructor Create(db: TSqlDb; AQueue: TUpdateQueue; AResults: TResultQueue; wakeFd: LongInt;
      intervalMs, retries: Integer; leaseBlock: Int64; const boardIds, highs: array of Int64);
    destructor Destroy; override;
    { Drain the queue, commit it, release the leases to `finalSeqs` (by board index), post a final
      result and end. Called once by the event loop, after it stopped handing out seqs. }
    procedure RequestStop(const finalSeqs: array of Int64);
  end;

implementation

uses
  BaseUnix, Math, wamiutil;

constructor TDatabaseWriterThread.Create(db: TSqlDb; AQueue: TUpdateQueue; AResults: TResultQueue; wakeFd: LongInt;
  intervalMs, retries: Integer; leaseBlock: Int64; const boardIds, highs: array of Int64);
var
  i: Integer;
begin
  FDb := db;
  FQueue := AQueue;
  FResults := AResults;
  FWakeFd := wakeFd;
  FIntervalMs := intervalMs;
  FRetries := retries;
  FLeaseBlock := leaseBlock;
  SetLength(FBoardIds, Length(boardIds));
  SetLength(FHigh, Length(boardIds));
  SetLength(FMaxSeq, Length(boardIds));
  SetLength(FTouched, Length(boardIds));
  SetLength(FRangeMax, Length(boardIds));
  SetLength(FRangeTouched, Length(boardIds));
  for i := 0 to High(boardIds) do
  begin
    FBoardIds[i] := boardIds[i];
    FHigh[i] := highs[i];
    FMaxSeq[i] := -1;
    FRangeMax[i] := -1;
  end;
  FTouchedCount := 0;
  FEvent := RTLEventCreate;
  FLock := TCriticalSection.Create;
  FUpdCard := FDb.Prepare('UPDATE cards SET col = ?1, title = ?2, version = version + 1, updated_at = ?3 WHERE id = ?4');
  FInsEvent := FDb.Prepare('INSERT INTO card_events (board_id, seq, card_id, user_id, client_msg_id, col, title, at, committed_at, sent_at) ' +
    'VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)');
  FRaiseSeq := FDb.Prepare('UPDATE boards SET seq = ?1 WHERE id = ?2 AND seq < ?1');
  FLease := FDb.Prepare(LEASE_UPSERT_SQL);
  FRelease := FDb.Prepare(LEASE_RELEASE_SQL);
  inherited Create(False);
end;

destructor TDatabaseWriterThread.Destroy;
begin
  FUpdCard.Free;
  FInsEvent.Free;
  FRaiseSeq.Free;
  FLease.Free;
  FRelease.Free;
  FDb.Free;
  RTLEventDestroy(FEvent);
  FLock.Free;
  inherited Destroy;
end;

procedure TDatabaseWriterThread.RequestStop(const finalSeqs: array of Int64);
var
  i: Integer;
begin
  FLock.Enter;
  try
    SetLength(FFinalSeqs, Length(finalSeqs));
    for i := 0 to High(finalSeqs) do FFinalSeqs[i] := finalSeqs[i];
    FStopRequested := True;
  finally
    FLock.Leave;
  end;
  RTLEventSetEvent(FEvent);
end;

function TDatabaseWriterThread.StopRequested: Boolean;
begin
  FLock.Enter;
  try
    Result := FStopRequested;
  finally
    FLock.Leave;
  end;
end;

procedure TDatabaseWriterThread.Post(r: TBatchResult);
var
  b: Byte;
begin
  FResults.Push(r);
  b := 1;
  fpWrite(FWakeFd, b, 1); { a full pipe already wakes the loop: EAGAIN is fine }
end;

procedure TDatabaseWriterThread.Touch(b: Integer; seq: Int64);
begin
  if FMaxSeq[b] < 0 then
  begin
    FTouched[FTouchedCount] := b;
    Inc(FTouchedCount);
    FMaxSeq[b] := seq;
  end
  else if seq > FMaxSeq[b] then
    FMaxSeq[b] := seq;
end;

procedure TDatabaseWriterThread.ClearTouched;
var
  i: Integer;
begin
  for i := 0 to FTouchedCount - 1 do FMaxSeq[FTouched[i]] := -1;
  FTouchedCount := 0;
end;

{ boards.seq := the highest seq of rows lo..hi-1, per board. }
procedure TDatabaseWriterThread.RaiseBoardSeqs(lo, hi: Integer);
var
  i, b, cnt: Integer;
  it: PUpdateItem;
begin
  cnt := 0;
  for i := lo to hi - 1 do
  begin
    it := FRows[i];
    b := it^.boardIdx;
    if FRangeMax[b] < 0 then
    begin
      FRangeTouched[cnt] := b;
      Inc(cnt);
      FRangeMax[b] := it^.seq;
    end
    else if it^.seq > FRangeMax[b] then
      FRangeMax[b] := it^.seq;
  end;
  try
    for i := 0 to cnt - 1 do
    begin
      b := FRangeTouched[i];
      FRaiseSeq.BindInt(1, FRangeMax[b]);
      FRaiseSeq.BindInt(2, FBoardIds[b]);
      FRaiseSeq.Exec;
    end;
  finally
    for i := 0 to cnt - 1 do FRangeMax[FRangeTouched[i]] := -1;
  end;
end;

procedure TDatabaseWriterThread.WriteLeases;
var
  i: Integer;
begin
  for i := 0 to FGrantCount - 1 do
  begin
    FLease.BindInt(1, FBoardIds[FGrants[i].boardIdx]);
    FLease.BindInt(2, FGrants[i].high);
    FLease.Exec;
  end;
end;

function TDatabaseWriterThread.TryCommit(lo, hi: Integer): TTryOutcome;
var
  i: Integer;
  it: PUpdateItem;
  t: Double;
  withLeases: Boolean;
begin
  Result.ok := False;
  Result.errCode := 0;
  Result.errText := '';
  Result.startMs := NowMs;
  Result.endMs := Result.startMs;
  withLeases := not FLeasesDone;
  try
    FDb.Exec('BEGIN IMMEDIATE');
    t := NowMs;
    for i := lo to hi - 1 do
    begin
      it := FRows[i];
      FUpdCard.BindText(1, it^.column);
      FUpdCard.BindText(2, DbText(it^.title));
      FUpdCard.BindDouble(3, t);
      FUpdCard.BindInt(4, it^.card);
      if FUpdCard.Exec <> 1 then raise ESqlError.CreateCode(-1, 'card ' + IntToStr(it^.card) + ' not found');
      FInsEvent.BindInt(1, it^.boardId);
      FInsEvent.BindInt(2, it^.seq);
      FInsEvent.BindInt(3, it^.card);
      FInsEvent.BindInt(4, it^.user);
      FInsEvent.BindText(5, DbText(it^.id));
      FInsEvent.BindText(6, it^.column);
      FInsEvent.BindText(7, DbText(it^.title));
      FInsEvent.BindDouble(8, it^.at);
      FInsEvent.BindDouble(9, t);
      FInsEvent.BindDouble(10, it^.sentAt);
      FInsEvent.Exec;
    end;
    RaiseBoardSeqs(lo, hi);
    if withLeases then WriteLeases;
    FDb.Exec('COMMIT');
    if withLeases then FLeasesDone := True;
    Result.endMs := NowMs;
    Result.ok := True;
  except
    on e: ESqlError do
    begin
      Result.errCode := e.code;
      Result.errText := SqliteCodeName(e.code) + ': ' + e.Message;
      FDb.RollbackQuietly;
    end;
    on e: Exception do
    begin
      Result.errCode := 1;
      Result.errText := e.ClassName + ': ' + e.Message;
      FDb.RollbackQuietly;
    end;
  end;
end;

function TDatabaseWriterThread.CommitLeasesOnly: TTryOutcome;
begin
  Result := TryCommit(0, 0);
end;

procedure TDatabaseWriterThread.ProcessBatch(list, wanted: TList);
var
  r: TBatchResult;
  i, j, n: Integer;
  it: PUpdateItem;
  split: TSplitResult;
  anyFailed: Boolean;
  o: TTryOutcome;
begin
  r := TBatchResult.Create;
  r.items := list;
  r.leaseWanted := wanted;
  n := list.Count;
  if Length(FRows) < n then SetLength(FRows, n);
  FRowCount := 0;
  ClearTouched;
  for i := 0 to n - 1 do
  begin
    it := PUpdateItem(list[i]);
    it^.ok := False;
    it^.attempts := 0;
    it^.error := '';
    Touch(it^.boardIdx, it^.seq);
    FRows[FRowCount] := it;
    Inc(FRowCount);
  end;
  for i := 0 to wanted.Count - 1 do
    Touch(PUpdateItem(wanted[i])^.boardIdx, PUpdateItem(wanted[i])^.seq);
  { the leases this batch extends }
  FGrantCount := 0;
  SetLength(FGrants, FTouchedCount);
  for i := 0 to FTouchedCount - 1 do
  begin
    j := FTouched[i];
    if (FHigh[j] - FMaxSeq[j]) * 2 < FLeaseBlock then
    begin
      FGrants[FGrantCount].boardIdx := j;
      FGrants[FGrantCount].high := FMaxSeq[j] + FLeaseBlock;
      Inc(FGrantCount);
    end;
  end;
  FLeasesDone := FGrantCount = 0;
  try
    if FRowCount > 0 then
    begin
      split := CommitWithSplit(FRowCount, FRetries, @TryCommit);
      anyFailed := False;
      for i := 0 to FRowCount - 1 do
      begin
        it := FRows[i];
        it^.ok := split.rows[i].ok;
        it^.attempts := split.rows[i].attempts;
        if it^.ok then
        begin
          it^.startMs := split.rows[i].startMs;
          it^.commitMs := split.rows[i].endMs - split.rows[i].startMs;
        end
        else
        begin
          it^.error := split.rows[i].errText;
          anyFailed := True;
        end;
      end;
      SetLength(r.tx, Length(split.tx));
      for i := 0 to High(split.tx) do
      begin
        r.tx[i].size := split.tx[i].size;
        r.tx[i].ok := split.tx[i].ok;
        r.tx[i].durationMs := split.tx[i].durationMs;
        if not split.tx[i].ok and IsBusyCode(split.tx[i].errCode) then Inc(r.busyHits);
      end;
      r.splits := split.splits;
      r.retries := split.retries;
      if anyFailed then
      begin
        { The failed rows' seqs were broadcast: keep boards.seq past them (and commit the leases,
          if no sub-batch carried them), so they show as gaps, never as reused seqs. }
        try
          FDb.Exec('BEGIN IMMEDIATE');
          RaiseBoardSeqs(0, FRowCount);
          if not FLeasesDone then WriteLeases;
          FDb.Exec('COMMIT');
          FLeasesDone := True;
        except
          on e: Exception do FDb.RollbackQuietly;
        end;
      end;
    end
    else if not FLeasesDone then
    begin
      for i := 0 to FRetries do
      begin
        if i > 0 then Inc(r.retries);
        o := CommitLeasesOnly;
        SetLength(r.tx, Length(r.tx) + 1);
        r.tx[High(r.tx)].size := 0;
        r.tx[High(r.tx)].ok := o.ok;
        r.tx[High(r.tx)].durationMs := o.endMs - o.startMs;
        if not o.ok and IsBusyCode(o.errCode) then Inc(r.busyHits);
        if o.ok then Break;
      end;
    end;
  except
    on e: Exception do
      for i := 0 to FRowCount - 1 do
        if FRows[i]^.attempts = 0 then
        begin
          FRows[i]^.ok := False;
          FRows[i]^.attempts := 1;
          FRows[i]^.error := 'writer: ' + e.Message;
        end;
  end;
  if FLeasesDone and (FGrantCount > 0) then
  begin
    SetLength(r.leases, FGrantCount);
    for i := 0 to FGrantCount - 1 do
    begin
      r.leases[i] := FGrants[i];
      FHigh[FGrants[i].boardIdx] := FGrants[i].high;
    end;
  end;
  Post(r);
end;

procedure TDatabaseWriterThread.ReleaseLeases(r: TBatchResult);
var
  i: Integer;
begin
  r.releaseOk := False;
  try
    FDb.Exec('BEGIN IMMEDIATE');
    for i := 0 to High(FBoardIds) do
    begin
      FRelease.BindInt(1, FBoardIds[i]);
      if i <= High(FFinalSeqs) then FRelease.BindInt(2, FFinalSeqs[i]) else FRelease.BindInt(2, FHigh[i]);
      FRelease.Exec;
    end;
    FDb.Exec('COMMIT');
    r.releaseOk := True;
  except
    on e: Exception do
    begin
      r.releaseError := e.Message;
      FDb.RollbackQuietly;
    end;
  end;
end;

procedure TDatabaseWriterThread.Execute;
var
  next, now: Double;
  list, wanted: TList;
  r: TBatchResult;
  waitMs: Integer;
begin
  { the floating-point control word is per thread: IEEE semantics here too (see wamipascal.lpr) }
  SetExceptionMask([exInvalidOp, exDenormalized, exZeroDivide, exOverflow, exUnderflow, exPrecision]);
  next := NowMs + FIntervalMs;
  while True do
  begin
    if not StopRequested then
    begin
      now := NowMs;
      if now < next then
      begin
        waitMs := Trunc(next - now) + 1;
        RTLEventWaitFor(FEvent, waitMs);
        Continue;
      end;
      next := next + FIntervalMs;
      if next < now then next := now; { a commit longer than the interval: the next flush at once }
      list := FQueue.PopAll(wanted);
      if (list.Count > 0) or (wanted.Count > 0) then
        ProcessBatch(list, wanted)
      else
      begin
        list.Free;
        wanted.Free;
      end;
    end
    else
    begin
      while True do
      begin
        list := FQueue.PopAll(wanted);
        if (list.Count = 0) and (wanted.Count = 0) then
        begin
          list.Free;
          wanted.Free;
          Break;
        end;
        ProcessBatch(list, wanted);
      end;
      r := TBatchResult.Create;
      r.items := TList.Create;
      r.leaseWanted := TList.Create;
      r.final := True;
      ReleaseLeases(r);
      Post(r);
      Exit;
    end;
  end;
end;

end.
