using System.Text.RegularExpressions;
using QubesWeb.Data.Jobs;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Estate;
using QubesWeb.Services.Jobs;
using QubesWeb.Services.Networks;

namespace QubesWeb.Services.Updates;

/// <summary>
/// Opens a template's way to its updates proxy for an update job (<see cref="UpdatesProxy"/>): its UpdateVM's link,
/// a firewall that lets only the proxy through, an interface plugged into the running guest, and the guest's address
/// set on it through its agent (a template's own network configuration knows no interface: it has none otherwise).
/// </summary>
public sealed partial class TemplateUpdateNetwork(Inventory inventory, IHypervisor hypervisor, EstateMonitor estate, DomainDefinitions domains, Guests guests)
{
    /// <summary>
    /// For a template: opens its way to the updates proxy and returns what its package manager's environment must
    /// hold; null for a standalone, which updates through its own netvm. A refusal says what to do (start the
    /// UpdateVM, choose one).
    /// </summary>
    public async Task<IReadOnlyList<string>?> OpenAsync(JobContext job, IGuest guest, GuestOutputLog output, CancellationToken ct)
    {
        var template = await inventory.GetForDomainAsync(job.Target, ct);
        if (template.Class != QubeClass.TemplateVM) return null;
        var route = UpdatesProxy.RouteOf(template, template.UpdateVm is null ? await inventory.FindAsync(QubeRules.DefaultUpdateVm, ct) : null);
        var via = $"{route.UpdateVm}'s updates proxy at {route.ProxyAddress}:{route.Port}";
        if (guests.Simulated)
        {
            await job.LogAsync($"Demo mode: the update would reach its repositories only through {via}; libvirt's test driver has no guest and no packet filter, so nothing goes anywhere.", JobLogLevel.Warning);
            return route.Environment;
        }
        var updateVm = await inventory.GetForDomainAsync(route.UpdateVm, ct);
        if (estate.StateOf(updateVm) is not RunState.Running)
            throw new QubeRuleException($"{route.UpdateVm}, the UpdateVM of {job.Target}, is not running: start it first. A template reaches its repositories only through its UpdateVM's updates proxy.");

        await job.ProgressAsync(25, $"Connecting to {via}");
        hypervisor.DefineLinkIfChanged(QubeNetwork.LinkOf(updateVm));
        hypervisor.DefineFirewallIfChanged(UpdatesProxy.FirewallOf(route));
        var nic = UpdatesProxy.InterfaceOf(template, updateVm);
        if (hypervisor.MoveInterfacesLive(domains.SpecOf(template) with { Interfaces = [nic] }) == InterfaceMove.NotSupported)
            throw new HypervisorException($"This hypervisor cannot plug an interface into the running {job.Target}, so it cannot reach its updates proxy.");

        // The guest names the new interface itself (udev): it is found by its MAC, then given the template's address.
        // It shows some time after libvirt plugged it in (the guest's PCI hot-plug, then its driver): asked until then.
        var name = await FindInterfaceAsync(job, guest, output, nic.Mac, ct);
        // As the first-boot seed sets a client up: its address alone (/32) and the proxy reached on-link, so nothing
        // else on the 10.137 block looks reachable from the template.
        foreach (var args in new[]
                 {
                     new[] { "addr", "replace", $"{template.IpAddress}/32", "dev", name }, ["link", "set", name, "up"],
                     ["route", "replace", $"{route.ProxyAddress}/32", "dev", name],
                 })
        {
            var run = await guest.RunAsync(IpTool, args, TimeSpan.FromSeconds(30), output, ct);
            if (run.ExitCode != 0)
                throw new HypervisorException($"{IpTool} {string.Join(' ', args)} exited with code {run.ExitCode} in {job.Target}; its updates proxy cannot be reached.");
        }
        await job.LogAsync($"{job.Target} reaches {via} on {name} ({template.IpAddress}); its firewall lets nothing else through.");
        return route.Environment;
    }

    /// <summary>How long a guest has to show an interface plugged into it.</summary>
    private static readonly TimeSpan PlugTimeout = TimeSpan.FromSeconds(30);

    private static async Task<string> FindInterfaceAsync(JobContext job, IGuest guest, GuestOutputLog output, string mac, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + PlugTimeout;
        var wait = TimeSpan.FromMilliseconds(200);
        while (true)
        {
            var links = await guest.RunAsync(IpTool, ["-o", "link"], TimeSpan.FromSeconds(30), output, ct);
            if (InterfaceWithMac(links.Output, mac) is { } name) return name;
            if (DateTime.UtcNow >= deadline)
                throw new HypervisorException($"{job.Target} shows no interface with MAC {mac} {PlugTimeout.TotalSeconds:0} s after it was plugged in ({IpTool} -o link); its updates proxy cannot be reached. Its kernel may lack the virtio-net driver or PCI hot-plug.");
            await Task.Delay(wait, ct);
            wait = TimeSpan.FromMilliseconds(Math.Min(wait.TotalMilliseconds * 2, 2000));
        }
    }

    /// <summary>iproute2's tool, where Debian and Fedora both have it.</summary>
    public const string IpTool = "/usr/sbin/ip";

    /// <summary>The interface <c>ip -o link</c> lists with <paramref name="mac"/>: "2: ens4: &lt;...&gt; ... link/ether MAC brd ...".</summary>
    public static string? InterfaceWithMac(string ipLinkOutput, string mac) =>
        ipLinkOutput.Split('\n').Select(l => LinkLine().Match(l)).Where(m => m.Success && string.Equals(m.Groups["mac"].Value, mac, StringComparison.OrdinalIgnoreCase))
            .Select(m => m.Groups["name"].Value).FirstOrDefault();

    // A name as Linux allows it (no '/', no spaces, at most 15), so what the guest says can only ever be a name.
    [GeneratedRegex(@"^\d+:\s+(?<name>[A-Za-z0-9_.-]{1,15})(@\S+)?:\s.*\slink/ether\s(?<mac>[0-9a-fA-F:]{17})\s")]
    private static partial Regex LinkLine();
}
