using System.Buffers.Binary;
using System.Net;
using Microsoft.Extensions.Options;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Agent;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Estate;
using QubesWeb.Services.Updates;

namespace QubesWeb.Services.Providers;

/// <summary>
/// Tells each running network provider which clients it has, as a Qubes netvm learns of each client's vif: when a
/// client starts or stops, moves to another netvm, or the provider itself starts, the console runs the provider's
/// <see cref="Program"/> through its guest agent with the addresses of its running clients as arguments. Always the
/// whole list, so a call that was missed or came late is mended by the next, and nothing is sent when the list is the
/// one the provider already has. A guest without the program is left alone (its route to the qubes' block serves);
/// the demo has no guests, so nothing is told there. At boot a provider knows none of its clients from its firmware:
/// they come and go while it runs.
/// </summary>
public sealed class ProviderClients(EstateMonitor estate, Inventory inventory, LibvirtHypervisor hypervisor,
    IOptions<EstateOptions> options, ILogger<ProviderClients> log) : IHostedService
{
    /// <summary>The provider's program, given its clients' addresses (none when it has no running client).</summary>
    public const string Program = "/usr/lib/qubesweb/network-clients";

    /// <summary>How long a provider that just started has for its agent to answer.</summary>
    private static readonly TimeSpan AgentBoot = TimeSpan.FromMinutes(3);

    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _gate = new();
    private readonly HashSet<string> _busy = new(StringComparer.Ordinal), _again = new(StringComparer.Ordinal);

    /// <summary>What each running provider was last told (its clients' addresses, joined); gone when it stops.</summary>
    private readonly Dictionary<string, string> _told = new(StringComparer.Ordinal);

    public Task StartAsync(CancellationToken ct)
    {
        if (options.Value.IsDemo) return Task.CompletedTask;
        estate.DomainChanged += OnDomainChanged;
        // A netvm changed in the inventory (a running client moved, or left for none) comes as a change of the estate.
        estate.Changed += OnEstateChanged;
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken ct)
    {
        estate.DomainChanged -= OnDomainChanged;
        estate.Changed -= OnEstateChanged;
        _stopping.Cancel();
        return Task.CompletedTask;
    }

    private void OnDomainChanged(DomainChange change)
    {
        if (change.Kind is DomainChangeKind.Started or DomainChangeKind.Stopped or DomainChangeKind.Crashed or DomainChangeKind.Resumed)
            _ = Task.Run(TellAllAsync);
    }

    private void OnEstateChanged() => _ = Task.Run(TellAllAsync);

    private async Task TellAllAsync()
    {
        try
        {
            foreach (var provider in (await inventory.ListAsync(_stopping.Token)).Where(q => q.ProvidesNetwork))
                Tell(provider.Name);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            log.LogWarning("Could not list the network providers to tell them their clients: {Error}", e.Message);
        }
    }

    /// <summary>One telling at a time per provider; asked again meanwhile, it goes round once more with the newest list.</summary>
    private void Tell(string provider)
    {
        lock (_gate)
        {
            if (!_busy.Add(provider))
            {
                _again.Add(provider);
                return;
            }
        }
        _ = Task.Run(async () =>
        {
            while (true)
            {
                try
                {
                    await TellOnceAsync(provider, _stopping.Token);
                }
                catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
                {
                }
                catch (Exception e)
                {
                    log.LogWarning("Could not tell {Provider} its clients: {Error}", provider, e.Message);
                }
                lock (_gate)
                {
                    if (_again.Remove(provider)) continue;
                    _busy.Remove(provider);
                    return;
                }
            }
        });
    }

    private async Task TellOnceAsync(string provider, CancellationToken ct)
    {
        var qubes = await inventory.ListAsync(ct);
        if (qubes.FirstOrDefault(q => q.Name == provider) is not { ProvidesNetwork: true } p || estate.StateOf(p) is not RunState.Running)
        {
            lock (_gate) _told.Remove(provider);
            return;
        }
        var clients = ClientsOf(provider, qubes, estate.StateOf);
        var list = string.Join(' ', clients);
        lock (_gate)
            if (_told.TryGetValue(provider, out var told) && told == list) return;

        var agent = new GuestAgent(new LibvirtAgentTransport(provider, call => hypervisor.WithDomain(provider, call)));
        GuestExecResult run;
        try
        {
            await new AgentGuest(provider, agent).WaitReadyAsync(AgentBoot, ct);
            run = await agent.RunAsync(Program, clients, TimeSpan.FromSeconds(30), ct: ct);
        }
        catch (GuestAgentException e) when (e.Command == "guest-exec")
        {
            // Most likely a guest without the program: its own routes serve it; asked again only for another list.
            log.LogInformation("{Provider} could not run {Program} ({Error}); its clients were not told", provider, Program, e.Description);
            lock (_gate) _told[provider] = list;
            return;
        }
        catch (GuestAgentUnavailableException e)
        {
            log.LogInformation("{Provider}'s guest agent does not answer ({Error}); its clients were not told", provider, e.Message);
            return;
        }
        if (run.ExitCode != 0)
            log.LogWarning("{Program} in {Provider} exited with code {Code}: {Output}", Program, provider, run.ExitCode, (run.StdErr + run.StdOut).Trim());
        else
            log.LogInformation("Told {Provider} its clients: {Clients}", provider, clients.Count == 0 ? "none" : list);
        lock (_gate) _told[provider] = list;
    }

    /// <summary>The addresses of the provider's running (or paused) clients, in the addresses' order.</summary>
    public static IReadOnlyList<string> ClientsOf(string provider, IEnumerable<Qube> qubes, Func<Qube, RunState> state) =>
        qubes.Where(q => q.NetVm?.Name == provider && q.IpAddress is not null && state(q) is RunState.Running or RunState.Paused)
            .Select(q => q.IpAddress!)
            .OrderBy(ip => BinaryPrimitives.ReadUInt32BigEndian(IPAddress.Parse(ip).GetAddressBytes())).ToList();
}
