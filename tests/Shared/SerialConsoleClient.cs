// A qube's console socket (serial, or graphical: RFB bytes) as the console page's script opens it (a signed-in session's cookie, the console's
// own Origin), or as a hostile page would (no cookie, another Origin): what it was answered, what it was sent.
using System.Net;
using System.Net.WebSockets;
using System.Text;

namespace QubesWeb.Tests.Shared;

public sealed class SerialConsoleClient : IDisposable
{
    private readonly ClientWebSocket _socket = new();
    private readonly StringBuilder _text = new();
    private readonly List<byte> _bytes = [];
    private Task? _reading;

    /// <summary>The id of the session the socket was opened with (null when it sent none of its own making).</summary>
    public string? SessionId { get; private set; }

    /// <summary>The HTTP status of the handshake: 101 when the upgrade was accepted.</summary>
    public HttpStatusCode Status => _socket.HttpStatusCode;

    /// <summary>The close frame's code and reason once the console ended the socket.</summary>
    public WebSocketCloseStatus? CloseStatus => _socket.CloseStatus;
    public string? CloseReason => _socket.CloseStatusDescription;

    /// <summary>All the socket's binary frames so far, as text.</summary>
    public string Text
    {
        get { lock (_text) return _text.ToString(); }
    }

    /// <summary>All the socket's binary frames so far, as bytes (RFB is binary).</summary>
    public byte[] Bytes
    {
        get { lock (_text) return [.. _bytes]; }
    }

    /// <summary>
    /// Opens the socket of <paramref name="qube"/>'s console (the path's segment as given, unescaped: tests send bad
    /// names); <paramref name="cookie"/> and <paramref name="origin"/> null send none; <paramref name="console"/> is the
    /// socket's last segment: <c>serial</c> or <c>vnc</c>. Returns whether it was upgraded.
    /// </summary>
    public static async Task<SerialConsoleClient> ConnectAsync(ConsoleHost host, string qube, bool signedIn = true, string? origin = "",
        bool force = false, string? cookie = null, string console = "serial")
    {
        var client = new SerialConsoleClient();
        var ws = client._socket;
        ws.Options.CollectHttpResponseDetails = true;
        if (signedIn)
        {
            var (name, value) = host.NewSessionCookie();
            client.SessionId = value;
            cookie ??= $"{name}={value}";
        }
        if (cookie is not null) ws.Options.SetRequestHeader("Cookie", cookie);
        // "" stands for the console's own origin, as its page sends it.
        if (origin is not null) ws.Options.SetRequestHeader("Origin", origin == "" ? host.BaseUrl : origin);
        var uri = new Uri($"ws://{new Uri(host.BaseUrl).Authority}/qubes/{qube}/console/{console}{(force ? "?force=1" : "")}");
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            await ws.ConnectAsync(uri, timeout.Token);
        }
        catch (WebSocketException)
        {
            // Refused before the upgrade: Status says how.
        }
        return client;
    }

    /// <summary>Reads every frame into <see cref="Text"/> until the console closes the socket (answering its close).</summary>
    public Task StartReading() => _reading ??= Task.Run(async () =>
    {
        var buffer = new byte[4096];
        while (_socket.State == WebSocketState.Open)
        {
            var got = await _socket.ReceiveAsync(buffer, CancellationToken.None);
            if (got.MessageType == WebSocketMessageType.Close)
            {
                if (_socket.State == WebSocketState.CloseReceived)
                    await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "", CancellationToken.None);
                return;
            }
            lock (_text)
            {
                _text.Append(Encoding.UTF8.GetString(buffer, 0, got.Count));
                _bytes.AddRange(buffer.AsSpan(0, got.Count));
            }
        }
    });

    /// <summary>Completes once the console has closed the socket (within 60 s, or fails).</summary>
    public async Task ClosedAsync()
    {
        await StartReading().WaitAsync(TimeSpan.FromSeconds(60));
    }

    /// <summary>Sends <paramref name="bytes"/> as one binary frame (what noVNC sends).</summary>
    public Task SendAsync(byte[] bytes) =>
        _socket.SendAsync(bytes, WebSocketMessageType.Binary, endOfMessage: true, CancellationToken.None);

    /// <summary>Types <paramref name="keys"/> into the console, as xterm.js sends them (a binary frame).</summary>
    public Task SendAsync(string keys) =>
        _socket.SendAsync(Encoding.UTF8.GetBytes(keys), WebSocketMessageType.Binary, endOfMessage: true, CancellationToken.None);

    public void Dispose() => _socket.Dispose();
}
