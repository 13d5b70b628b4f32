// Wraps virDomainQemuAgentCommand (libvirt-qemu.h, in its own library libvirt-qemu.so.0)
using System.Runtime.InteropServices;

namespace QubesWeb.Hypervisor.Libvirt;

/// Passes raw commands to the QEMU guest agent of a running domain. Only the qemu driver implements this; other
/// drivers (test, xen) fail with ErrorNumber.NoSupport ("this function is not supported by the connection driver:
/// virDomainQemuAgentCommand").
public static class QemuAgent
{
    /// Sends one command, a JSON object such as {"execute":"guest-ping"}, and returns the agent's whole reply object
    /// (e.g. {"return":{}}). libvirt synchronises with the agent (guest-sync) before the command, and turns an "error"
    /// reply into a LibvirtException (InternalError, "unable to execute QEMU agent command 'NAME': DESC"), so the
    /// agent's error class is lost. Replies over 10 MiB are refused by libvirt. Blocks the calling thread until the
    /// reply or the timeout (then AgentUnresponsive, "Guest agent not available for now").
    public static string Command(Domain domain, string command, QemuAgentCommandTimeout timeout) =>
        Invoke(domain, command, (int)timeout);

    /// As above with a timeout in whole seconds (at least 1).
    public static string Command(Domain domain, string command, int timeoutSeconds)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(timeoutSeconds, 1);
        return Invoke(domain, command, timeoutSeconds);
    }

    private static string Invoke(Domain domain, string command, int timeout)
    {
        ArgumentNullException.ThrowIfNull(domain);
        ArgumentNullException.ThrowIfNull(command);
        // flags: none defined, libvirt requires 0.
        return Native.TakeString(
            LibvirtException.Check(Native.virDomainQemuAgentCommand(domain.Handle, command, timeout, 0)));
    }
}

/// virDomainQemuAgentCommandTimeoutValues (VIR_DOMAIN_QEMU_AGENT_COMMAND_MIN, an alias of Block, is left out); any
/// positive number is a timeout in seconds.
public enum QemuAgentCommandTimeout
{
    /// VIR_DOMAIN_QEMU_AGENT_COMMAND_BLOCK: wait for the reply forever.
    Block = -2,
    /// VIR_DOMAIN_QEMU_AGENT_COMMAND_DEFAULT: libvirt's default wait (5 s).
    Default = -1,
    /// VIR_DOMAIN_QEMU_AGENT_COMMAND_NOWAIT: do not wait; the command is dropped unless a reply is already there.
    NoWait = 0,
    /// VIR_DOMAIN_QEMU_AGENT_COMMAND_SHUTDOWN: the wait libvirt uses for its own agent shutdown (60 s).
    Shutdown = 60,
}

internal static partial class Native
{
    internal const string QemuLibrary = "libvirt-qemu.so.0";

    [LibraryImport(QemuLibrary, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial nint virDomainQemuAgentCommand(DomainHandle domain, string cmd, int timeout, uint flags);
}
