using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using System.Xml.Linq;
using QubesWeb.Hypervisor.Libvirt;
using QubesWeb.Hypervisor.Networks;

namespace QubesWeb.Hypervisor.Domains;

public sealed class HypervisorOptions
{
    /// <summary>libvirt URI: <c>test:///PATH</c> for the demo and tests, <c>qemu:///system</c> or <c>xen:///system</c> on a host.</summary>
    public string Uri { get; set; } = "test:///default";

    /// <summary>
    /// libvirt's domain type (test, kvm, qemu, xen); empty picks it from the URI, kvm for qemu URIs. A host whose
    /// /dev/kvm qemu cannot use needs <c>qemu</c> (software emulation): libvirt still advertises kvm there.
    /// </summary>
    public string? DomainType { get; set; }

    /// <summary>The first wait before reopening a lost connection; it doubles up to <see cref="MaxReconnectDelay"/>.</summary>
    public TimeSpan ReconnectDelay { get; set; } = TimeSpan.FromMilliseconds(500);
    public TimeSpan MaxReconnectDelay { get; set; } = TimeSpan.FromSeconds(15);
}

/// <summary>
/// The hypervisor over one shared libvirt connection. It reopens a dropped connection in the background and says
/// while it is down; lifecycle events are taken off libvirt's event thread at once and raised from a task of ours,
/// so a slow subscriber can never stall libvirt's event loop.
/// </summary>
public sealed partial class LibvirtHypervisor : IHypervisor, IDisposable
{
    private readonly HypervisorOptions _options;
    private readonly ILogger<LibvirtHypervisor> _log;
    private readonly Lock _gate = new();
    private readonly Channel<DomainChange> _events = Channel.CreateUnbounded<DomainChange>(new() { SingleReader = true });
    private readonly CancellationTokenSource _stopping = new();
    private Connect? _conn;
    private Task? _reconnecting;
    private bool _opened;
    private HypervisorConnectionState _state;
    private readonly string _domainType;

    public LibvirtHypervisor(IOptions<HypervisorOptions> options, ILogger<LibvirtHypervisor> log)
    {
        _options = options.Value;
        _log = log;
        _domainType = string.IsNullOrWhiteSpace(_options.DomainType) ? DomainTypeFor(_options.Uri) : _options.DomainType;
        _state = new(_options.Uri, false, "not connected yet", DateTime.UtcNow);
        _ = Task.Run(PumpEventsAsync);
    }

    /// <summary>Opens the connection; when libvirt is not reachable, keeps trying in the background.</summary>
    public void Open()
    {
        lock (_gate)
            if (_conn is not null || _opened) return;
        _opened = true;
        if (!TryOpen()) StartReconnecting();
    }

    public HypervisorConnectionState Connection => _state;
    public event Action<HypervisorConnectionState>? ConnectionChanged;
    public event Action<DomainChange>? DomainChanged;

    /// <summary>libvirt's domain type for a URI's driver.</summary>
    public static string DomainTypeFor(string uri)
    {
        var scheme = uri.Split(':', 2)[0].Split('+')[0].ToLowerInvariant();
        return scheme switch
        {
            "test" => "test",
            "xen" => "xen",
            "qemu" => File.Exists("/dev/kvm") ? "kvm" : "qemu",
            _ => scheme,
        };
    }

    public IReadOnlyList<DomainStatus> ListDomains() => Use(conn =>
    {
        try
        {
            // One call for every domain's state where the driver has it (test, qemu); listing is the fallback.
            return conn.GetAllDomainStats(DomainStatsTypes.State)
                .Select(r => new DomainStatus(r.Name, r.Uuid, Map(r.State ?? DomainState.NoState)))
                .ToList();
        }
        catch (LibvirtException e) when (e.Code == ErrorNumber.NoSupport)
        {
            var list = new List<DomainStatus>();
            foreach (var d in conn.ListAllDomains())
                using (d)
                    list.Add(new DomainStatus(d.Name, d.Uuid, Map(d.GetState().State)));
            return list;
        }
    });

    public DomainStatus? GetDomain(string name) => Use(conn =>
    {
        using var d = conn.TryLookupDomainByName(name);
        if (d is null) return null;
        try
        {
            return new DomainStatus(d.Name, d.Uuid, Map(d.GetState().State));
        }
        catch (LibvirtException e) when (e.Code == ErrorNumber.NoDomain)
        {
            // Undefined between the lookup and the question (a removal running beside): it is gone.
            return null;
        }
    });

    public QubeMetadata? GetMetadata(string name) => Use(conn =>
    {
        using var d = conn.LookupDomainByName(name);
        return DomainXml.ParseMetadata(d.GetXmlDesc());
    });

    public string GetXml(string name) => Use(conn =>
    {
        using var d = conn.LookupDomainByName(name);
        return d.GetXmlDesc();
    });

    /// <summary>Runs <paramref name="call"/> with the live domain (for the guest agent transport, which speaks to it directly).</summary>
    public T WithDomain<T>(string name, Func<Libvirt.Domain, T> call) => Use(conn =>
    {
        using var d = conn.LookupDomainByName(name);
        return call(d);
    });

    /// <summary>
    /// A picture of the screen of the running domain <paramref name="name"/>, in the format the driver chose (qemu:
    /// PNG or PPM; the test driver: PNG), with its MIME type.
    /// </summary>
    public async Task<(string MimeType, byte[] Data)> ScreenshotAsync(string name, CancellationToken ct = default)
    {
        var (pipe, mime) = Use(conn =>
        {
            using var d = conn.LookupDomainByName(name);
            var stream = LibvirtStream.New(conn, StreamFlags.NonBlock);
            try
            {
                var type = d.Screenshot(stream);
                return (new StreamPipe(stream), type);
            }
            catch
            {
                stream.Dispose();
                throw;
            }
        });
        using (pipe)
        {
            using var data = new MemoryStream();
            var buffer = new byte[64 * 1024];
            int n;
            while ((n = await pipe.ReadAsync(buffer, ct)) > 0) data.Write(buffer, 0, n);
            pipe.Finish();
            return (mime, data.ToArray());
        }
    }

    /// <summary>
    /// Opens the serial console of the running domain <paramref name="name"/> as a byte pipe, one viewer at a time
    /// as virsh does: another viewer's session makes it refused (<see cref="ConsoleBusyException"/>) unless
    /// <paramref name="force"/> takes the console from it, which ends its stream.
    /// </summary>
    public StreamPipe OpenConsole(string name, bool force = false)
    {
        try
        {
            return Use(conn =>
            {
                using var d = conn.LookupDomainByName(name);
                var stream = LibvirtStream.New(conn, StreamFlags.NonBlock);
                try
                {
                    d.OpenConsole(null, stream, force ? DomainConsoleFlags.Force : DomainConsoleFlags.Safe);
                    return new StreamPipe(stream);
                }
                catch
                {
                    stream.Dispose();
                    throw;
                }
            });
        }
        catch (HypervisorException e) when (e.InnerException is LibvirtException { Code: ErrorNumber.OperationFailed } l && l.Message.Contains("console session", StringComparison.OrdinalIgnoreCase))
        {
            throw new ConsoleBusyException($"Someone else has the console of {name} open. Take it over to close theirs.", e);
        }
        catch (HypervisorException e) when (e.InnerException is LibvirtException { Code: ErrorNumber.NoSupport })
        {
            throw new HypervisorException($"{name} has no console here: libvirt at {_options.Uri} does not offer consoles (the demo's test driver runs no guest).", e);
        }
    }

    /// <summary>
    /// A socket connected to the running domain <paramref name="name"/>'s first graphical display (its VNC server),
    /// opened by libvirt (virDomainOpenGraphicsFD): no socket path and no TCP port to know. The display speaks RFB
    /// from its first byte; the caller owns the socket. qemu lets several clients share a display, so one viewer at a
    /// time is the caller's rule.
    /// </summary>
    public Socket OpenGraphics(string name)
    {
        try
        {
            var fd = Use(conn =>
            {
                using var d = conn.LookupDomainByName(name);
                return d.OpenGraphicsFd(0, DomainOpenGraphicsFlags.SkipAuth);
            });
            return new Socket(new SafeSocketHandle(fd, ownsHandle: true));
        }
        catch (HypervisorException e) when (e.InnerException is LibvirtException { Code: ErrorNumber.NoSupport })
        {
            throw new HypervisorException($"{name} has no graphical console here: libvirt at {_options.Uri} does not offer one (the demo's test driver runs no guest).", e);
        }
    }

    public void Define(DomainSpec spec) => Use(conn =>
    {
        using var d = conn.DefineDomainXml(DomainXml.Build(spec, _domainType));
        return true;
    });

    public bool DefineIfChanged(DomainSpec spec) => Use(conn =>
    {
        using (var existing = conn.TryLookupDomainByName(spec.Name))
            if (existing is not null && DomainXml.Describes(existing.GetXmlDesc(DomainXmlFlags.Inactive), spec, _domainType))
                return false;
        using var d = conn.DefineDomainXml(DomainXml.Build(spec, _domainType));
        return true;
    });

    public void Undefine(string name) => OnDomain(name, d => d.Undefine());
    public void Start(string name) => Use(conn =>
    {
        using var d = conn.LookupDomainByName(name);
        // A link is defined stopped; whichever of its qubes starts first (the provider or a client) brings it up, so
        // a provider and its clients can start in any order. libvirt would refuse the start with its own words.
        foreach (var network in NetworksOf(d.GetXmlDesc(DomainXmlFlags.Inactive)))
        {
            using var net = conn.TryLookupNetworkByName(network)
                ?? throw new HypervisorException($"{name} cannot start: its interface is on the network '{network}', which libvirt does not have." +
                    (LinkSpec.IsLinkName(network) ? " The console defines it again at its next reconciliation." : " Define it, or choose another uplink in the console's settings (Networks:Uplink)."));
            if (!net.IsActive) net.Create();
        }
        d.Create();
        return true;
    });

    public void Shutdown(string name) => OnDomain(name, d => d.Shutdown());
    public void Kill(string name) => OnDomain(name, d => d.Destroy());
    public void Pause(string name) => OnDomain(name, d => d.Suspend());
    public void Resume(string name) => OnDomain(name, d => d.Resume());

    private void OnDomain(string name, Action<Domain> action) => Use(conn =>
    {
        using var d = conn.LookupDomainByName(name);
        action(d);
        return true;
    });

    public static RunState Map(DomainState s) => s switch
    {
        DomainState.Running => RunState.Running,
        DomainState.Blocked => RunState.Running,
        DomainState.Paused => RunState.Paused,
        DomainState.PMSuspended => RunState.Paused,
        DomainState.Shutdown => RunState.Transient,
        DomainState.Shutoff => RunState.Halted,
        DomainState.Crashed => RunState.Crashed,
        _ => RunState.Unknown,
    };

    /// <summary>Runs one call on the connection, turning libvirt's errors into the layer's exceptions.</summary>
    private T Use<T>(Func<Connect, T> call)
    {
        var conn = _conn ?? throw Unavailable();
        try
        {
            return call(conn);
        }
        catch (LibvirtException e) when (IsConnectionFault(e) && !conn.IsAlive)
        {
            ConnectionLost(conn, e.Message);
            throw Unavailable(e);
        }
        catch (LibvirtException e)
        {
            throw new HypervisorException(e.Message, e);
        }
        catch (ObjectDisposedException e)
        {
            throw Unavailable(e);
        }
    }

    private HypervisorUnavailableException Unavailable(Exception? inner = null) =>
        new($"libvirt at {_options.Uri} is not reachable{(_state.Error is null ? "" : ": " + _state.Error)}. The console reconnects by itself; try again when it is back.", inner);

    private static bool IsConnectionFault(LibvirtException e) =>
        e.Code is ErrorNumber.SystemError or ErrorNumber.RPC or ErrorNumber.NoConnect or ErrorNumber.InvalidConn;

    private bool TryOpen()
    {
        Connect? conn = null;
        try
        {
            conn = Connect.Open(_options.Uri);
            conn.SetKeepAlive(5, 3);
            conn.RegisterCloseCallback(reason => ConnectionLost(conn, $"connection closed ({reason})"));
            conn.RegisterDomainLifecycleCallback(OnLifecycle);
            lock (_gate) _conn = conn;
            SetState(new(_options.Uri, true, null, DateTime.UtcNow));
            _log.LogInformation("Connected to libvirt at {Uri} (libvirt {Version})", _options.Uri, Libvirt.Libvirt.LibraryVersion);
            return true;
        }
        catch (LibvirtException e)
        {
            conn?.Dispose();
            _log.LogWarning("libvirt at {Uri} is not reachable: {Error}", _options.Uri, e.Message);
            SetState(new(_options.Uri, false, e.Message, _state.IsUp ? DateTime.UtcNow : _state.SinceUtc));
            return false;
        }
    }

    private void ConnectionLost(Connect conn, string error)
    {
        lock (_gate)
        {
            if (!ReferenceEquals(_conn, conn)) return;
            _conn = null;
        }
        _log.LogWarning("Lost libvirt at {Uri}: {Error}", _options.Uri, error);
        SetState(new(_options.Uri, false, error, DateTime.UtcNow));
        // Not disposed here: this may run on libvirt's event thread inside the close callback.
        _ = Task.Run(conn.Dispose);
        StartReconnecting();
    }

    private void StartReconnecting()
    {
        lock (_gate)
        {
            if (_reconnecting is { IsCompleted: false } || _stopping.IsCancellationRequested) return;
            _reconnecting = Task.Run(async () =>
            {
                var delay = _options.ReconnectDelay;
                while (!_stopping.IsCancellationRequested)
                {
                    try { await Task.Delay(delay, _stopping.Token); }
                    catch (OperationCanceledException) { return; }
                    if (TryOpen()) return;
                    delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, _options.MaxReconnectDelay.Ticks));
                }
            });
        }
    }

    private void SetState(HypervisorConnectionState state)
    {
        var changed = state.IsUp != _state.IsUp || state.Error != _state.Error;
        _state = state;
        if (changed) ConnectionChanged?.Invoke(state);
    }

    private void OnLifecycle(DomainLifecycleEvent e)
    {
        var kind = e.Event switch
        {
            DomainEventType.Defined => DomainChangeKind.Defined,
            DomainEventType.Undefined => DomainChangeKind.Undefined,
            DomainEventType.Started => DomainChangeKind.Started,
            DomainEventType.Stopped => DomainChangeKind.Stopped,
            DomainEventType.Suspended => DomainChangeKind.Suspended,
            DomainEventType.Resumed => DomainChangeKind.Resumed,
            DomainEventType.Shutdown => DomainChangeKind.Shutdown,
            DomainEventType.Crashed => DomainChangeKind.Crashed,
            _ => DomainChangeKind.Other,
        };
        _events.Writer.TryWrite(new DomainChange(e.Name, e.Uuid, kind, DateTime.UtcNow));
    }

    private async Task PumpEventsAsync()
    {
        await foreach (var change in _events.Reader.ReadAllAsync())
        {
            try { DomainChanged?.Invoke(change); }
            catch (Exception ex) { _log.LogError(ex, "A domain event subscriber failed on {Change}", change); }
        }
    }

    public void Dispose()
    {
        _stopping.Cancel();
        _events.Writer.TryComplete();
        Connect? conn;
        lock (_gate) { conn = _conn; _conn = null; }
        conn?.Dispose();
    }
}
