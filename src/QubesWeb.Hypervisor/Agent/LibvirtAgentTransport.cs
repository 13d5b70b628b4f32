using System.Diagnostics;
using System.Text;
using System.Text.Json;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Libvirt;

namespace QubesWeb.Hypervisor.Agent;

/// <summary>
/// Sends guest agent commands through libvirt (<c>virDomainQemuAgentCommand</c>), which owns the domain's agent channel
/// and synchronises with the agent itself. Only the qemu driver supports this: on any other driver (test, xen) every
/// command fails with a <see cref="GuestAgentUnavailableException"/> saying so.
/// </summary>
/// <remarks>
/// libvirt reports the agent's error replies as its own errors, without the agent's error class
/// (<see cref="GuestAgentException.ErrorClass"/> is null), and refuses replies over 10 MiB, which limits how much output
/// a guest-exec-status can carry. Its timeout is in whole seconds (rounded up). A libvirt call cannot be abandoned:
/// cancelling returns at once, while the call itself runs on until its reply or timeout on its own thread, and the
/// next command waits for it.
/// </remarks>
public sealed class LibvirtAgentTransport : IGuestAgentTransport
{
    private const string AgentErrorMarker = "unable to execute QEMU agent command '";

    private readonly Func<Func<Domain, string>, string> _withDomain;
    private readonly SemaphoreSlim _gate = new(1, 1);

    /// <summary>
    /// <paramref name="withDomain"/> runs the callback with a live handle of the domain and returns its result, e.g.
    /// <c>call => hypervisor.WithDomain(name, call)</c>. It runs on a thread of its own, blocked for the whole command.
    /// </summary>
    public LibvirtAgentTransport(string domainName, Func<Func<Domain, string>, string> withDomain)
    {
        ArgumentException.ThrowIfNullOrEmpty(domainName);
        ArgumentNullException.ThrowIfNull(withDomain);
        DomainName = domainName;
        _withDomain = withDomain;
    }

    /// <summary>Over a domain handle the caller keeps, and disposes only after the last command.</summary>
    public static LibvirtAgentTransport ForDomain(Domain domain)
    {
        ArgumentNullException.ThrowIfNull(domain);
        return new LibvirtAgentTransport(domain.Name, call => call(domain));
    }

    public string DomainName { get; }

    public async Task<JsonElement> ExecuteAsync(string command, object? arguments, TimeSpan timeout,
        CancellationToken ct = default)
    {
        var reply = await CallAsync(command, arguments, timeout, expectReply: true, ct);
        return AgentJson.ReturnOf(command, reply!);
    }

    /// <summary>
    /// libvirt always waits for a reply, so this waits for <paramref name="timeout"/> (or until the agent goes away, as
    /// it does when the guest powers off) and takes libvirt's "agent unresponsive" as the command handed over. An error
    /// reply within the timeout still throws. libvirt reports an agent that fails its own guest-sync the same way: for
    /// shutting a domain down through libvirt, <c>virDomainShutdownFlags</c> with the guest-agent flag is the sure way.
    /// </summary>
    public Task SendAsync(string command, object? arguments, TimeSpan timeout, CancellationToken ct = default) =>
        CallAsync(command, arguments, timeout, expectReply: false, ct);

    private async Task<string?> CallAsync(string command, object? arguments, TimeSpan timeout, bool expectReply,
        CancellationToken ct)
    {
        GuestAgent.ValidateTimeout(timeout, nameof(timeout));
        var request = Encoding.UTF8.GetString(AgentJson.Request(command, arguments));
        var seconds = timeout == Timeout.InfiniteTimeSpan
            ? (int)QemuAgentCommandTimeout.Block
            : (int)Math.Clamp(Math.Ceiling(timeout.TotalSeconds), 1, int.MaxValue);
        // One libvirt call at a time, held until the call ends even when its caller gave up: libvirt would queue a
        // second one behind the first on the domain's agent job anyway, and fail it if the wait grows too long.
        await _gate.WaitAsync(ct);
        Task<string?> call;
        try
        {
            // The blocking libvirt call and the read of its error stay on one thread (libvirt keeps errors per thread).
            call = Task.Factory.StartNew(() => Call(command, request, seconds, timeout, expectReply),
                CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }
        catch
        {
            _gate.Release();
            throw;
        }
        // Observing the failure too, so an abandoned call's error is not reported as unobserved.
        _ = call.ContinueWith(t =>
            {
                _gate.Release();
                _ = t.Exception;
            }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return await call.WaitAsync(ct);
    }

    private string? Call(string command, string request, int seconds, TimeSpan timeout, bool expectReply)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return _withDomain(domain => QemuAgent.Command(domain, request, seconds));
        }
        catch (Exception e) when (LibvirtErrorOf(e) is { } error)
        {
            // A command that answers nothing (guest-shutdown) was handed over when the agent stops answering, or
            // when the guest went down so fast that libvirt saw the agent's socket close (or the domain stop) first.
            if (!expectReply && (error.Code == ErrorNumber.AgentUnresponsive
                                 || (error.Code == ErrorNumber.InternalError && error.Message.Contains("End of file from agent socket", StringComparison.Ordinal))
                                 || error.Code == ErrorNumber.OperationInvalid))
            {
                return null;
            }
            var translated = Translate(command, error, seconds, timeout, Stopwatch.GetElapsedTime(started));
            if (translated is null)
            {
                throw;
            }
            throw translated;
        }
    }

    /// <summary>The libvirt error, raw from the binding or wrapped by <see cref="LibvirtHypervisor"/>; a connection the
    /// hypervisor reports as lost (HypervisorUnavailableException) is left as it is.</summary>
    private static LibvirtException? LibvirtErrorOf(Exception e) => e switch
    {
        LibvirtException error => error,
        HypervisorException { InnerException: LibvirtException error } => error,
        _ => null,
    };

    private Exception? Translate(string command, LibvirtException error, int seconds, TimeSpan timeout,
        TimeSpan elapsed)
    {
        switch (error.Code)
        {
            case ErrorNumber.NoSupport:
                return new GuestAgentUnavailableException(
                    $"Cannot reach the guest agent of '{DomainName}': this libvirt connection's driver does not pass " +
                    $"commands to guest agents, only the qemu driver does (libvirt: {error.Message}).", error);
            case ErrorNumber.AgentUnresponsive when seconds > 0 && elapsed >= TimeSpan.FromSeconds(seconds):
                return new TimeoutException(
                    $"The guest agent of '{DomainName}' did not answer {command} within {GuestAgent.Describe(timeout)} " +
                    $"(libvirt: {error.Message}).", error);
            case ErrorNumber.AgentUnresponsive or ErrorNumber.AgentUnsynced or ErrorNumber.OperationInvalid:
                return new GuestAgentUnavailableException(
                    $"The guest agent of '{DomainName}' is not reachable: {error.Message}", error);
            case ErrorNumber.InternalError when error.Message.Contains(AgentErrorMarker, StringComparison.Ordinal):
                // "internal error: unable to execute QEMU agent command 'guest-exec': DESC"
                var at = error.Message.IndexOf(AgentErrorMarker, StringComparison.Ordinal) + AgentErrorMarker.Length;
                var colon = error.Message.IndexOf("': ", at, StringComparison.Ordinal);
                var description = colon < 0 ? error.Message : error.Message[(colon + 3)..];
                return new GuestAgentException(command, null, description,
                    $"The guest agent of '{DomainName}' refused {command}: {description}", error);
            default:
                return null;
        }
    }
}
