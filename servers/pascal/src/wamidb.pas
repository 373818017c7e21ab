{ SQLite through the FPC `sqlite3` unit (linked against the system libsqlite3): connections with
  the design note's pragmas, the schema check, loading boards/cards/leases at start, and the seq
  lease table. The writer's batch transactions are in wamiwriter. }
unit wamidb;

{$mode objfpc}{$H+}

interface

uses
  SysUtils, sqlite3;

type
  ESqlError = class(Exception)
  public
    code: Integer; { extended result code }
    constructor CreateCode(ACode: Integer; const AMsg: RawByteString);
  end;

  TSqlStmt = class
  private
    FDb: psqlite3;
    FStmt: psqlite3_stmt;
  public
    constructor Create(db: psqlite3; const sql: RawByteString);
    destructor Destroy; override;
    procedure BindInt(i: Integer; v: Int64);
    procedure BindDouble(i: Integer; v: Double);
    procedure BindText(i: Integer; const v: RawByteString);
    { SQLITE_ROW: true, SQLITE_DONE: false; raises otherwise. }
    function Step: Boolean;
    procedure Reset;
    function ColInt(i: Integer): Int64;
    function ColDouble(i: Integer): Double;
    function ColText(i: Integer): RawByteString;
    function ColIsNull(i: Integer): Boolean;
    { Runs to completion (resetting first); returns sqlite3_changes. }
    function Exec: Integer;
  end;

  TSqlDb = class
  private
    FDb: psqlite3;
  public
    constructor Open(const fileName: RawByteString; readOnly: Boolean; busyTimeoutMs: Integer);
    destructor Destroy; override;
    procedure Exec(const sql: RawByteString);
    function Prepare(const sql: RawByteString): TSqlStmt;
    function InTransaction: Boolean;
    procedure RollbackQuietly;
    property Handle: psqlite3 read FDb;
  end;

  TBoardRow = record
    id: Int64;
    seq: Int64;       { boards.seq }
    leaseHigh: Int64; { seq_leases.high, 0 without a row }
  end;

  TCardRow = record
    id: Int64;
    board: Int64;
  end;

  TBoardRows = array of TBoardRow;
  TCardRows = array of TCardRow;

const
  SEQ_LEASES_SQL = 'CREATE TABLE IF NOT EXISTS seq_leases (board_id INTEGER PRIMARY KEY, high INTEGER NOT NULL)';
  LEASE_UPSERT_SQL = 'INSERT INTO seq_leases (board_id, high) VALUES (?1, ?2) ' +
    'ON CONFLICT(board_id) DO UPDATE SET high = MAX(high, excluded.high)';
  LEASE_RELEASE_SQL = 'INSERT INTO seq_leases (board_id, high) VALUES (?1, MAX(?2, (SELECT seq FROM boards WHERE id = ?1))) ' +
    'ON CONFLICT(board_id) DO UPDATE SET high = excluded.high';

{ Why the file cannot be served, or '' when it has the v1 schema (boards, cards, card_events with sent_at). }
function CheckDatabase(const fileName: RawByteString): RawByteString;
function SqliteCodeName(code: Integer): RawByteString;
{ Boards with boards.seq and the lease's high (0 where the board has no lease row), by id. }
function LoadBoards(db: TSqlDb): TBoardRows;
function LoadCards(db: TSqlDb): TCardRows;

implementation

constructor ESqlError.CreateCode(ACode: Integer; const AMsg: RawByteString);
begin
  inherited Create(AMsg);
  code := ACode;
end;

function SqliteCodeName(code: Integer): RawByteString;
begin
  case code of
    5: Result := 'SQLITE_BUSY';
    6: Result := 'SQLITE_LOCKED';
    8: Result := 'SQLITE_READONLY';
    10: Result := 'SQLITE_IOERR';
    11: Result := 'SQLITE_CORRUPT';
    13: Result := 'SQLITE_FULL';
    14: Result := 'SQLITE_CANTOPEN';
    19: Result := 'SQLITE_CONSTRAINT';
    275: Result := 'SQLITE_CONSTRAINT_CHECK';
    787: Result := 'SQLITE_CONSTRAINT_FOREIGNKEY';
    1299: Result := 'SQLITE_CONSTRAINT_NOTNULL';
    1555: Result := 'SQLITE_CONSTRAINT_PRIMARYKEY';
    1811: Result := 'SQLITE_CONSTRAINT_TRIGGER';
    2067: Result := 'SQLITE_CONSTRAINT_UNIQUE';
    261: Result := 'SQLITE_BUSY_RECOVERY';
    517: Result := 'SQLITE_BUSY_SNAPSHOT';
    -1: Result := 'WAMI_NO_CARD';
  else
    Result := 'SQLITE_ERROR_' + IntToStr(code);
  end;
end;

procedure Check(db: psqlite3; rc: Integer; const what: RawByteString);
var
  msg: RawByteString;
begin
  if (rc = SQLITE_OK) or (rc = SQLITE_ROW) or (rc = SQLITE_DONE) then Exit;
  if db <> nil then msg := StrPas(sqlite3_errmsg(db)) else msg := 'error ' + IntToStr(rc);
  raise ESqlError.CreateCode(rc, what + ': ' + msg);
end;

{ TSqlStmt }

constructor TSqlStmt.Create(db: psqlite3; const sql: RawByteString);
begin
  inherited Create;
  FDb := db;
  Check(FDb, sqlite3_prepare_v2(FDb, PAnsiChar(sql), -1, @FStmt, nil), 'prepare "' + Copy(sql, 1, 60) + '"');
end;

destructor TSqlStmt.Destroy;
begin
  if FStmt <> nil then sqlite3_finalize(FStmt);
  inherited Destroy;
end;

procedure TSqlStmt.BindInt(i: Integer; v: Int64);
begin
  Check(FDb, sqlite3_bind_int64(FStmt, i, v), 'bind');
end;

procedure TSqlStmt.BindDouble(i: Integer; v: Double);
begin
  Check(FDb, sqlite3_bind_double(FStmt, i, v), 'bind');
end;

procedure TSqlStmt.BindText(i: Integer; const v: RawByteString);
begin
  { never nil: '' is an empty text, not NULL }
  Check(FDb, sqlite3_bind_text(FStmt, i, PAnsiChar(v), Length(v), sqlite3_destructor_type(SQLITE_TRANSIENT)), 'bind');
end;

function TSqlStmt.Step: Boolean;
var
  rc: Integer;
begin
  rc := sqlite3_step(FStmt);
  if rc = SQLITE_ROW then Exit(True);
  if rc = SQLITE_DONE then Exit(False);
  rc := sqlite3_extended_errcode(FDb);
  sqlite3_reset(FStmt);
  raise ESqlError.CreateCode(rc, StrPas(sqlite3_errmsg(FDb)));
end;

procedure TSqlStmt.Reset;
begin
  sqlite3_reset(FStmt);
end;

function TSqlStmt.ColInt(i: Integer): Int64;
begin
  Result := sqlite3_column_int64(FStmt, i);
end;

function TSqlStmt.ColDouble(i: Integer): Double;
begin
  Result := sqlite3_column_double(FStmt, i);
end;

function TSqlStmt.ColText(i: Integer): RawByteString;
var
  p: PAnsiChar;
  n: Integer;
begin
  p := sqlite3_column_text(FStmt, i);
  n := sqlite3_column_bytes(FStmt, i);
  SetString(Result, p, n);
end;

function TSqlStmt.ColIsNull(i: Integer): Boolean;
begin
  Result := sqlite3_column_type(FStmt, i) = SQLITE_NULL;
end;

function TSqlStmt.Exec: Integer;
begin
  sqlite3_reset(FStmt);
  while Step do ;
  Result := sqlite3_changes(FDb);
  sqlite3_reset(FStmt);
end;

{ TSqlDb }

constructor TSqlDb.Open(const fileName: RawByteString; readOnly: Boolean; busyTimeoutMs: Integer);
var
  flags, rc: Integer;
begin
  inherited Create;
  if readOnly then flags := SQLITE_OPEN_READONLY else flags := SQLITE_OPEN_READWRITE;
  rc := sqlite3_open_v2(PAnsiChar(fileName), @FDb, flags, nil);
  if rc <> SQLITE_OK then
  begin
    if FDb <> nil then
    begin
      sqlite3_close(FDb);
      FDb := nil;
    end;
    raise ESqlError.CreateCode(rc, 'cannot open ' + fileName + ': ' + SqliteCodeName(rc));
  end;
  sqlite3_extended_result_codes(FDb, 1);
  { the design note's pragmas, on every connection }
  if not readOnly then Exec('PRAGMA journal_mode = WAL');
  Exec('PRAGMA synchronous = NORMAL');
  Exec('PRAGMA cache_size = -64000');
  sqlite3_busy_timeout(FDb, busyTimeoutMs);
end;

destructor TSqlDb.Destroy;
begin
  if FDb <> nil then sqlite3_close(FDb);
  inherited Destroy;
end;

procedure TSqlDb.Exec(const sql: RawByteString);
var
  err: PAnsiChar;
  rc: Integer;
  msg: RawByteString;
begin
  err := nil;
  rc := sqlite3_exec(FDb, PAnsiChar(sql), nil, nil, @err);
  if rc <> SQLITE_OK then
  begin
    if err <> nil then
    begin
      msg := StrPas(err);
      sqlite3_free(err);
    end
    else
      msg := StrPas(sqlite3_errmsg(FDb));
    raise ESqlError.CreateCode(sqlite3_extended_errcode(FDb), msg);
  end;
end;

function TSqlDb.Prepare(const sql: RawByteString): TSqlStmt;
begin
  Result := TSqlStmt.Create(FDb, sql);
end;

function TSqlDb.InTransaction: Boolean;
begin
  Result := sqlite3_get_autocommit(FDb) = 0;
end;

procedure TSqlDb.RollbackQuietly;
begin
  if InTransaction then
    try
      Exec('ROLLBACK');
    except
      { SQLite may have rolled back already }
    end;
end;

function CheckDatabase(const fileName: RawByteString): RawByteString;
var
  db: TSqlDb;
  st: TSqlStmt;
  hasBoards, hasCards, hasEvents, hasSentAt: Boolean;
  name, missing: RawByteString;
begin
  if not FileExists(fileName) then
    Exit('--db ' + fileName + ': no such file (create it with "wami-bench seed --db ' + fileName + '")');
  db := nil;
  try
    try
      db := TSqlDb.Open(fileName, True, 5000);
      st := db.Prepare('SELECT name FROM sqlite_master WHERE type = ''table''');
      hasBoards := False;
      hasCards := False;
      hasEvents := False;
      try
        while st.Step do
        begin
          name := st.ColText(0);
          if name = 'boards' then hasBoards := True
          else if name = 'cards' then hasCards := True
          else if name = 'card_events' then hasEvents := True;
        end;
      finally
        st.Free;
      end;
      missing := '';
      if not hasBoards then missing := missing + ', boards';
      if not hasCards then missing := missing + ', cards';
      if not hasEvents then missing := missing + ', card_events';
      if missing <> '' then
        Exit('--db ' + fileName + ': not a wami-bench database (missing tables: ' + Copy(missing, 3, MaxInt) +
          '); create it with "wami-bench seed"');
      hasSentAt := False;
      st := db.Prepare('SELECT name FROM pragma_table_info(''card_events'')');
      try
        while st.Step do
          if st.ColText(0) = 'sent_at' then hasSentAt := True;
      finally
        st.Free;
      end;
      if not hasSentAt then
        Exit('--db ' + fileName + ': card_events has no sent_at column (made by an older seed); re-seed it');
      Result := '';
    except
      on e: Exception do
        Result := '--db ' + fileName + ': cannot open as SQLite: ' + e.Message;
    end;
  finally
    db.Free;
  end;
end;

function LoadBoards(db: TSqlDb): TBoardRows;
var
  st: TSqlStmt;
  n: Integer;
begin
  Result := nil;
  n := 0;
  st := db.Prepare('SELECT b.id, b.seq, COALESCE(l.high, 0) FROM boards b LEFT JOIN seq_leases l ON l.board_id = b.id ORDER BY b.id');
  try
    while st.Step do
    begin
      if n >= Length(Result) then SetLength(Result, n * 2 + 64);
      Result[n].id := st.ColInt(0);
      Result[n].seq := st.ColInt(1);
      Result[n].leaseHigh := st.ColInt(2);
      Inc(n);
    end;
  finally
    st.Free;
  end;
  SetLength(Result, n);
end;

function LoadCards(db: TSqlDb): TCardRows;
var
  st: TSqlStmt;
  n: Integer;
begin
  Result := nil;
  n := 0;
  st := db.Prepare('SELECT id, board_id FROM cards ORDER BY id');
  try
    while st.Step do
    begin
      if n >= Length(Result) then SetLength(Result, n * 2 + 256);
      Result[n].id := st.ColInt(0);
      Result[n].board := st.ColInt(1);
      Inc(n);
    end;
  finally
    st.Free;
  end;
  SetLength(Result, n);
end;

end.
