using Microsoft.Extensions.Options;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Libvirt;
using QubesWeb.Services.Estate;

namespace QubesWeb.Services.Consoles;

/// <summary>
/// Qubes' serial consoles in the browser: the relay between a browser's WebSocket and the qube's console stream (one
/// viewer at a time, as virsh: libvirt refuses a second one unless it takes the console over, which ends the first
/// one's stream and so its socket with that reason).
/// </summary>
public sealed class SerialConsoles(IHypervisor hypervisor, EstateMonitor estate, QubesWeb.Services.Qubes.QubeQueries qubes,
    IOptions<HypervisorOptions> options, ILogger<SerialConsoles> log)
    : ConsoleRelays(hypervisor, estate, qubes, options, log)
{
    /// <summary>The address of a qube's console socket (the web host maps it), relative to the console's base.</summary>
    public static string SocketPath(string name) => $"qubes/{Uri.EscapeDataString(name)}/console/serial";

    public override string What => "serial console";

    protected override bool RefusesSecondViewer => false;

    /// <summary>The terminal sends only what the user types or pastes.</summary>
    public override bool IsUserInput(ReadOnlySpan<byte> frame) => frame.Length > 0;

    public override string? NotOfferedReason(string name) =>
        Offered ? null : $"The demo runs no guest (libvirt's test driver), so {name} has no console to open.";

    protected override IGuestEnd Open(LibvirtHypervisor libvirt, string name, bool force) => new StreamEnd(libvirt.OpenConsole(name, force));

    private sealed class StreamEnd(StreamPipe pipe) : IGuestEnd
    {
        public ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct) => pipe.ReadAsync(buffer, ct);

        public ValueTask WriteAsync(ReadOnlyMemory<byte> bytes, CancellationToken ct) => pipe.WriteAsync(bytes, ct);

        public bool IsFailure(Exception e) => e is LibvirtException or ObjectDisposedException;

        // libvirt itself ends the stream of the viewer a forced open takes the console from.
        public void Cut()
        {
        }

        public void Dispose()
        {
            try { pipe.Abort(); }
            catch (LibvirtException) { /* already ended: nothing left to abort */ }
            pipe.Dispose();
        }
    }
}
