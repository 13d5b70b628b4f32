using System.Diagnostics;
using System.Net.Sockets;
using System.Text.Json;

namespace QubesWeb.Hypervisor.Agent;

/// <summary>
/// Talks to a guest agent listening on a unix stream socket (<c>qemu-ga -m unix-listen</c>, or the host end of a
/// domain's agent channel that libvirt does not hold): one JSON object per line each way, one command at a time.
/// </summary>
/// <remarks>
/// The connection opens on the first command and is synchronised with <c>guest-sync-delimited</c>, as the protocol asks:
/// a 0xFF byte first (the agent drops any half-read request a previous client left behind), then everything the agent
/// sends is skipped up to its 0xFF sentinel and the reply carrying our random id. A command that times out or is
/// cancelled keeps the connection but marks it out of sync, so its late reply is skipped by the synchronisation
/// before the next command. The connection is kept rather than closed because qemu-ga in unix-listen mode quits
/// ("error reading channel") when a client closes while replies to it are unread; for the same reason closing (on a
/// protocol error, or <see cref="Dispose"/>) first tells the agent we are done and reads what it still sends.
/// qemu-ga serves one client at a time: while another client holds the socket, connecting works but nothing is
/// answered, which shows up as a timeout.
/// </remarks>
public sealed class UnixSocketAgentTransport : IGuestAgentTransport, IDisposable
{
    /// <summary>Longest reply accepted: qemu-ga caps each captured stream at 16 MiB, so a guest-exec-status with both
    /// streams full is about 45 MB of base64.</summary>
    private const int MaxReplyBytes = 64 << 20;
    private const int InitialBufferBytes = 64 << 10;
    private const byte Sentinel = 0xFF;
    private static readonly TimeSpan GentleCloseLimit = TimeSpan.FromSeconds(2);

    private readonly SemaphoreSlim _gate = new(1, 1);
    private Socket? _socket;
    private bool _inSync;
    private bool _disposed;
    private byte[] _buffer = new byte[InitialBufferBytes];
    private int _start, _end;

    public UnixSocketAgentTransport(string socketPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(socketPath);
        SocketPath = socketPath;
    }

    public string SocketPath { get; }

    public async Task<JsonElement> ExecuteAsync(string command, object? arguments, TimeSpan timeout,
        CancellationToken ct = default)
    {
        var reply = await ExchangeAsync(command, AgentJson.Request(command, arguments), expectReply: true, timeout, ct);
        return AgentJson.ReturnOf(command, reply);
    }

    /// <summary>Writes the command and returns. The agent may still answer (with an error, when the command fails):
    /// that reply is skipped by the synchronisation before the next command.</summary>
    public Task SendAsync(string command, object? arguments, TimeSpan timeout, CancellationToken ct = default) =>
        ExchangeAsync(command, AgentJson.Request(command, arguments), expectReply: false, timeout, ct);

    private async Task<JsonElement> ExchangeAsync(string command, byte[] request, bool expectReply, TimeSpan timeout,
        CancellationToken ct)
    {
        GuestAgent.ValidateTimeout(timeout, nameof(timeout));
        await _gate.WaitAsync(ct);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            // The timeout starts once it is our turn: a long command of another caller does not count against it.
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
            deadline.CancelAfter(timeout);
            var step = "connecting";
            try
            {
                var socket = _socket ??= await ConnectAsync(deadline.Token);
                if (!_inSync)
                {
                    step = "guest-sync-delimited";
                    await SynchroniseAsync(socket, deadline.Token);
                }
                step = command;
                await SendLineAsync(socket, request, deadline.Token);
                if (!expectReply)
                {
                    _inSync = false;
                    return default;
                }
                return await ReadReplyAsync(socket, command, deadline.Token);
            }
            catch (OperationCanceledException) when (deadline.IsCancellationRequested)
            {
                // The reply may still come: it is skipped by the next synchronisation.
                _inSync = false;
                if (ct.IsCancellationRequested)
                {
                    throw;
                }
                var within = GuestAgent.Describe(timeout);
                throw new TimeoutException(step == command
                    ? $"The guest agent at {SocketPath} did not answer {command} within {within}."
                    : $"The guest agent at {SocketPath} did not {(step == "connecting" ? "accept a connection" : "answer " + step)} " +
                      $"within {within} (is another client connected to it?).");
            }
            catch (SocketException e)
            {
                Close(gently: false);
                throw new GuestAgentUnavailableException(
                    $"Lost the connection to the guest agent at {SocketPath} during {step}: {e.Message}", e);
            }
            catch (GuestAgentUnavailableException)
            {
                // Refused, or closed by the agent: nothing left to read.
                Close(gently: false);
                throw;
            }
            catch
            {
                // A reply we cannot read (not JSON, too long): the stream is beyond resynchronising.
                Close(gently: true);
                throw;
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<Socket> ConnectAsync(CancellationToken ct)
    {
        var retry = TimeSpan.FromMilliseconds(10);
        while (true)
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(SocketPath), ct);
                _start = _end = 0;
                _inSync = false;
                return socket;
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.WouldBlock or SocketError.TryAgain)
            {
                // The listen backlog is full (qemu-ga's is 1: a client is being served and another waits). A unix
                // socket signals no room, so try again shortly; the command's timeout ends the tries.
                socket.Dispose();
                await Task.Delay(retry, ct);
                retry = TimeSpan.FromTicks(Math.Min(retry.Ticks * 2, TimeSpan.FromMilliseconds(200).Ticks));
            }
            catch (SocketException e)
            {
                socket.Dispose();
                throw new GuestAgentUnavailableException(
                    $"Cannot connect to the guest agent at {SocketPath}: {e.Message}", e);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }
    }

    private async Task SynchroniseAsync(Socket socket, CancellationToken ct)
    {
        var id = Random.Shared.NextInt64(1, 1L << 53);
        var request = AgentJson.Request("guest-sync-delimited", new Dictionary<string, long> { ["id"] = id });
        await WriteAsync(socket, new[] { Sentinel }, ct);
        await SendLineAsync(socket, request, ct);
        // Whatever came before the sentinel is stale (replies meant for a previous client, or the agent's complaint
        // about the half request it just dropped).
        while (true)
        {
            var at = Array.IndexOf(_buffer, Sentinel, _start, _end - _start);
            if (at >= 0)
            {
                _start = at + 1;
                break;
            }
            _start = _end = 0;
            await FillAsync(socket, ct);
        }
        // The sentinel prefixes our reply, but an older sync's sentinel may have been the one found: skip anything
        // else, even what is not JSON, until ours.
        while (true)
        {
            var reply = TryParse(await ReadLineAsync(socket, ct));
            if (reply is { ValueKind: JsonValueKind.Object } candidate && candidate.TryGetProperty("return", out var value) &&
                value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var echoed) && echoed == id)
            {
                _inSync = true;
                return;
            }
        }
    }

    private static async Task SendLineAsync(Socket socket, byte[] json, CancellationToken ct)
    {
        var line = new byte[json.Length + 1];
        json.CopyTo(line, 0);
        line[^1] = (byte)'\n';
        await WriteAsync(socket, line, ct);
    }

    private static async Task WriteAsync(Socket socket, ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        while (!data.IsEmpty)
        {
            var sent = await socket.SendAsync(data, SocketFlags.None, ct);
            data = data[sent..];
        }
    }

    /// <summary>The next non-empty line, parsed.</summary>
    private async Task<JsonElement> ReadReplyAsync(Socket socket, string command, CancellationToken ct)
    {
        var line = await ReadLineAsync(socket, ct);
        return TryParse(line) ?? throw new InvalidDataException(
            $"The guest agent at {SocketPath} answered {command} with something that is not JSON: " +
            AgentJson.Truncate(System.Text.Encoding.UTF8.GetString(line.Span[..Math.Min(line.Length, 200)])));
    }

    /// <summary>The next line that holds more than 0xFF sentinels and blanks, without them; valid until the next
    /// read.</summary>
    private async Task<ReadOnlyMemory<byte>> ReadLineAsync(Socket socket, CancellationToken ct)
    {
        while (true)
        {
            var scanned = 0;
            int end;
            while ((end = Array.IndexOf(_buffer, (byte)'\n', _start + scanned, _end - _start - scanned)) < 0)
            {
                scanned = _end - _start;
                await FillAsync(socket, ct);
            }
            var line = _buffer.AsMemory(_start, end - _start);
            _start = end + 1;
            var first = line.Span.IndexOfAnyExcept(Sentinel, (byte)' ', (byte)'\r');
            if (first >= 0)
            {
                return line[first..];
            }
        }
    }

    private JsonElement? TryParse(ReadOnlyMemory<byte> line)
    {
        try
        {
            // The document would only borrow the buffer, which the next read reuses: keep a copy.
            using var document = JsonDocument.Parse(line);
            var reply = document.RootElement.Clone();
            if (_start == _end && _buffer.Length > 4 * InitialBufferBytes)
            {
                // Let a huge reply's buffer go.
                _buffer = new byte[InitialBufferBytes];
                _start = _end = 0;
            }
            return reply;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>Reads more into the buffer, first making room (compacting, then growing up to the reply limit).</summary>
    private async Task FillAsync(Socket socket, CancellationToken ct)
    {
        if (_end == _buffer.Length)
        {
            if (_start > 0)
            {
                Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                _end -= _start;
                _start = 0;
            }
            else if (_buffer.Length >= MaxReplyBytes)
            {
                throw new InvalidDataException(
                    $"The guest agent at {SocketPath} sent a reply longer than {MaxReplyBytes >> 20} MiB.");
            }
            else
            {
                Array.Resize(ref _buffer, Math.Min(_buffer.Length * 2, MaxReplyBytes));
            }
        }
        var read = await socket.ReceiveAsync(_buffer.AsMemory(_end), SocketFlags.None, ct);
        if (read == 0)
        {
            throw new GuestAgentUnavailableException(
                $"The guest agent at {SocketPath} closed the connection before answering.");
        }
        _end += read;
    }

    private void Close(bool gently)
    {
        var socket = _socket;
        _socket = null;
        _inSync = false;
        _start = _end = 0;
        if (_buffer.Length > InitialBufferBytes)
        {
            _buffer = new byte[InitialBufferBytes];
        }
        if (socket is null)
        {
            return;
        }
        try
        {
            if (gently)
            {
                // Tell the agent we are done and read what it still sends until it closes its end: closing with
                // replies unread would make qemu-ga (unix-listen) quit. Bounded, for an agent that no longer reads.
                socket.Shutdown(SocketShutdown.Send);
                socket.ReceiveTimeout = (int)GentleCloseLimit.TotalMilliseconds;
                var sink = new byte[InitialBufferBytes];
                var started = Stopwatch.GetTimestamp();
                while (Stopwatch.GetElapsedTime(started) < GentleCloseLimit && socket.Receive(sink) > 0)
                {
                }
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Timed out or already broken: close regardless.
        }
        finally
        {
            socket.Dispose();
        }
    }

    /// <summary>Closes the connection gently (see the remarks). A command running meanwhile on another thread is not
    /// waited for: its connection is closed under it and it fails.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        if (_gate.Wait(TimeSpan.Zero))
        {
            try
            {
                Close(gently: true);
            }
            finally
            {
                _gate.Release();
            }
        }
        else
        {
            _socket?.Dispose();
        }
    }
}
