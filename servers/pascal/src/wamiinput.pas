{ Input of the wami Pascal server's connections: one recv per readable socket per loop turn into
  a shared buffer, handled in place (a socket keeps bytes only for an incomplete head or frame);
  HTTP heads go to wamiroutes, WebSocket frames (RFC 6455: fragments, ping/pong, the close
  handshake, 1009/1007/1002) become messages for wamiboards. }
unit wamiinput;

{$mode objfpc}{$H+}

interface

uses
  wamiconn;

procedure HandleMessage(c: TConn; opcode: Byte; p: PByte; n: SizeInt);
procedure HandleClose(c: TConn; p: PByte; n: SizeInt);
function ProcessWsFrame(c: TConn; p: PByte; avail: SizeInt): SizeInt;
function ProcessInput(c: TConn; p: PByte; len: SizeInt): SizeInt;
procedure ReadConn(c: TConn);

implementation

uses
  SysUtils, BaseUnix, Sockets, Math, wamiutil, wamiws, wamihttp, wamiboards, wamiroutes, wamimetrics;

const
  READ_CHUNK = 65536;

var
  readBuf: array[0..READ_CHUNK - 1] of Byte;

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

end.
