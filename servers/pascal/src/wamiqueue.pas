{ The seed's thread-safe queue (a TList under a TCriticalSection; PopAll hands everything queued
  to the writer at once) and the queue of the writer's results back to the event loop. }
unit wamiqueue;

{$mode objfpc}{$H+}

interface

uses
  Classes, SyncObjs;

type
  TItemKind = (ikUpdate, ikLeaseWanted);

  { One update on its way to SQLite (or, ikLeaseWanted: a board whose updates wait for a seq lease).
    The event loop fills it and never touches it while the writer has it; the writer fills in the
    outcome and hands it back. `conn` is the event loop's, the writer never reads it. }
  PUpdateItem = ^TUpdateItem;
  TUpdateItem = record
    kind: TItemKind;
    boardIdx: Integer;
    boardId: Int64;
    seq: Int64;
    card: Int64;
    user: Int64;
    id: RawByteString;
    column: RawByteString;
    title: RawByteString;
    at, sentAt: Double;
    receivedAt: Double;
    conn: Pointer;
    next: PUpdateItem; { the event loop's hold list of a board }
    { outcome, written by the writer }
    ok: Boolean;
    attempts: Integer;
    startMs: Double;
    commitMs: Double;
    error: RawByteString;
  end;

  TUpdateQueue = class
  private
    FList: TList;
    FLeaseWanted: TList;
    FLock: TCriticalSection;
  public
    constructor Create;
    destructor Destroy; override;
    procedure Push(AItem: PUpdateItem);
    { A board whose updates are held for a seq lease (an ikLeaseWanted item): the writer extends
      its lease with the next batch even if the board has no update in it. Not counted in Count. }
    procedure PushLeaseWanted(AItem: PUpdateItem);
    { Everything queued, oldest first, and the lease requests; the caller owns both lists. }
    function PopAll(out leaseWanted: TList): TList;
    { Updates queued, not yet taken by the writer. }
    function Count: Integer;
  end;

  TTxRecord = record
    size: Integer;
    ok: Boolean;
    durationMs: Double;
  end;

  TLeaseGrant = record
    boardIdx: Integer;
    high: Int64;
  end;

  { What the writer did with one PopAll. }
  TBatchResult = class
  public
    items: TList; { PUpdateItem, as popped, with their outcomes }
    leaseWanted: TList; { the ikLeaseWanted items popped with them }
    tx: array of TTxRecord;
    splits: Integer;
    retries: Integer;
    busyHits: Integer;
    { seq leases committed with this batch (the highs now durable) }
    leases: array of TLeaseGrant;
    { the last result: the queue is drained and the leases released }
    final: Boolean;
    releaseOk: Boolean;
    releaseError: RawByteString;
    destructor Destroy; override;
  end;

  TResultQueue = class
  private
    FList: TList;
    FLock: TCriticalSection;
  public
    constructor Create;
    destructor Destroy; override;
    procedure Push(r: TBatchResult);
    function PopAll: TList;
  end;

implementation

constructor TUpdateQueue.Create;
begin
  inherited Create;
  FList := TList.Create;
  FLeaseWanted := TList.Create;
  FLock := TCriticalSection.Create;
end;

destructor TUpdateQueue.Destroy;
begin
  FList.Free;
  FLeaseWanted.Free;
  FLock.Free;
  inherited Destroy;
end;

procedure TUpdateQueue.Push(AItem: PUpdateItem);
begin
  FLock.Enter;
  try
    FList.Add(AItem);
  finally
    FLock.Leave;
  end;
end;

procedure TUpdateQueue.PushLeaseWanted(AItem: PUpdateItem);
begin
  FLock.Enter;
  try
    FLeaseWanted.Add(AItem);
  finally
    FLock.Leave;
  end;
end;

function TUpdateQueue.PopAll(out leaseWanted: TList): TList;
begin
  FLock.Enter;
  try
    Result := FList;
    FList := TList.Create;
    leaseWanted := FLeaseWanted;
    FLeaseWanted := TList.Create;
  finally
    FLock.Leave;
  end;
end;

function TUpdateQueue.Count: Integer;
begin
  FLock.Enter;
  try
    Result := FList.Count;
  finally
    FLock.Leave;
  end;
end;

destructor TBatchResult.Destroy;
begin
  items.Free;
  leaseWanted.Free;
  inherited Destroy;
end;

constructor TResultQueue.Create;
begin
  inherited Create;
  FList := TList.Create;
  FLock := TCriticalSection.Create;
end;

destructor TResultQueue.Destroy;
begin
  FList.Free;
  FLock.Free;
  inherited Destroy;
end;

procedure TResultQueue.Push(r: TBatchResult);
begin
  FLock.Enter;
  try
    FList.Add(r);
  finally
    FLock.Leave;
  end;
end;

function TResultQueue.PopAll: TList;
begin
  FLock.Enter;
  try
    Result := FList;
    FList := TList.Create;
  finally
    FLock.Leave;
  end;
end;

end.
