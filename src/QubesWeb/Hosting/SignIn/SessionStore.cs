using System.Collections.Concurrent;
using System.Security.Cryptography;
using Microsoft.Extensions.Options;

namespace QubesWeb.Hosting.SignIn;

/// <summary>
/// The signed-in sessions, in memory as Cockpit's: a console restart signs everyone out (the link still works). A
/// session ends after <see cref="SignInOptions.SessionIdleTimeout"/> without a request or a circuit event, at sign-out,
/// and when the console stops; its open connections (circuits' WebSockets) are cut then, so a page left open
/// loses its hold on the console at once, not at its next click.
/// </summary>
public sealed class SessionStore : IDisposable
{
    private readonly ConcurrentDictionary<string, Session> _sessions = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;
    private readonly TimeSpan _idle;
    private readonly ILogger<SessionStore> _log;
    private readonly ITimer _sweeper;

    public SessionStore(IOptions<SignInOptions> options, ILogger<SessionStore> log, TimeProvider? time = null)
    {
        _time = time ?? TimeProvider.System;
        _idle = options.Value.SessionIdleTimeout;
        if (_idle <= TimeSpan.Zero)
            throw new StartupConfigurationException($"SignIn:SessionIdleTimeout must be positive; {_idle} was given.");
        _log = log;
        // A session with only a WebSocket open makes no requests to notice its expiry: look now and then.
        var every = TimeSpan.FromTicks(Math.Clamp(_idle.Ticks / 4, TimeSpan.FromSeconds(1).Ticks, TimeSpan.FromMinutes(1).Ticks));
        _sweeper = _time.CreateTimer(_ => Sweep(), null, every, every);
    }

    public int Count => _sessions.Count;

    /// <summary>The live sessions, for tests and diagnostics; never their ids in a page or a log.</summary>
    public IReadOnlyCollection<Session> All() => [.. _sessions.Values];

    /// <summary>A new session; its id goes into the cookie and nowhere else.</summary>
    public Session Create()
    {
        var session = new Session(Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_'), _time.GetUtcNow());
        _sessions[session.Id] = session;
        return session;
    }

    /// <summary>The live session with this id, touched; null when there is none or it has expired (it ends then).</summary>
    public Session? Find(string? id)
    {
        if (string.IsNullOrEmpty(id) || !_sessions.TryGetValue(id, out var session)) return null;
        var now = _time.GetUtcNow();
        if (now - session.LastSeen > _idle)
        {
            End(id, "expired");
            return null;
        }
        session.Touch(now);
        return session;
    }

    /// <summary>Counts the user's activity on a connection that makes no requests (a console's socket) for their session.</summary>
    public void KeepAlive(Session session)
    {
        if (!session.IsClosed) session.Touch(_time.GetUtcNow());
    }

    /// <summary>Ends a session and cuts its connections.</summary>
    public void End(string id, string why = "signed out")
    {
        if (!_sessions.TryRemove(id, out var session)) return;
        var cut = session.Close();
        _log.LogInformation("A session {Why}; {Count} connection(s) of it cut.", why, cut);
    }

    private void Sweep()
    {
        var now = _time.GetUtcNow();
        foreach (var (id, session) in _sessions)
            if (now - session.LastSeen > _idle) End(id, "expired");
    }

    public void Dispose() => _sweeper.Dispose();
}

/// <summary>One signed-in browser. Connections register how to cut them, so that ending the session ends its circuits.</summary>
public sealed class Session(string id, DateTimeOffset created)
{
    private readonly Lock _lock = new();
    private readonly List<Action> _connections = [];
    private long _lastSeen = created.UtcTicks;
    private bool _closed;

    public string Id { get; } = id;
    public DateTimeOffset Created { get; } = created;
    public DateTimeOffset LastSeen => new(Interlocked.Read(ref _lastSeen), TimeSpan.Zero);
    public bool IsClosed { get { lock (_lock) return _closed; } }

    public void Touch(DateTimeOffset now) => Interlocked.Exchange(ref _lastSeen, now.UtcTicks);

    /// <summary>Registers a live connection; disposing the result forgets it. A closed session cuts it at once.</summary>
    public IDisposable Hold(Action cut)
    {
        lock (_lock)
        {
            if (!_closed)
            {
                _connections.Add(cut);
                return new Release(this, cut);
            }
        }
        cut();
        return new Release(this, cut);
    }

    internal int Close()
    {
        Action[] cuts;
        lock (_lock)
        {
            _closed = true;
            cuts = [.. _connections];
            _connections.Clear();
        }
        foreach (var cut in cuts) cut();
        return cuts.Length;
    }

    private sealed class Release(Session session, Action cut) : IDisposable
    {
        public void Dispose()
        {
            lock (session._lock) session._connections.Remove(cut);
        }
    }
}
