using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Networks;

namespace QubesWeb.Services.Networks;

/// <summary>
/// How a template reaches its package repositories: never through a netvm (templates stay offline, as in Qubes),
/// only through the updates proxy of its UpdateVM, and only while an update job runs. The transport (chosen for what
/// a KVM host has, and documented in the README): for the job, the template gets one interface on its UpdateVM's
/// private link, an isolated port whose firewall drops everything but TCP to the proxy's port on the UpdateVM's
/// address; the package manager is pointed at it with http_proxy. The interface is plugged into the running guest
/// only (never in its definition), so it goes with the shutdown that ends the job.
/// </summary>
/// <param name="IsDefault">The template names no UpdateVM and uses the console's default (<see cref="QubeRules.DefaultUpdateVm"/>).</param>
public sealed record UpdatesRoute(string Template, string UpdateVm, bool IsDefault, string ProxyAddress, int Port)
{
    public string ProxyUrl => $"http://{ProxyAddress}:{Port}/";

    /// <summary>What the package manager is given, in both spellings programs read (apt, dnf and curl each read some).</summary>
    public IReadOnlyList<string> Environment =>
        [$"http_proxy={ProxyUrl}", $"https_proxy={ProxyUrl}", $"HTTP_PROXY={ProxyUrl}", $"HTTPS_PROXY={ProxyUrl}"];
}

public static class UpdatesProxy
{
    /// <summary>
    /// The route of <paramref name="template"/> (its <see cref="Qube.UpdateVm"/> loaded), through its own UpdateVM or
    /// <paramref name="defaultUpdateVm"/>; a <see cref="QubeRuleException"/> saying what to set when there is none.
    /// </summary>
    public static UpdatesRoute RouteOf(Qube template, Qube? defaultUpdateVm)
    {
        if (template.Class != QubeClass.TemplateVM)
            throw new QubeRuleException($"'{template.Name}' is not a template: it updates through its own netvm.");
        var updateVm = template.UpdateVm ?? defaultUpdateVm;
        if (updateVm is null)
            throw new QubeRuleException($"'{template.Name}' has no UpdateVM: there is no qube named '{QubeRules.DefaultUpdateVm}' (the default); choose one on its page.");
        QubeRules.ValidateUpdateVm(template, updateVm);
        if (updateVm.IpAddress is null)
            throw new QubeRuleException($"'{updateVm.Name}' has no address in the inventory, so its updates proxy cannot be reached.");
        return new UpdatesRoute(template.Name, updateVm.Name, template.UpdateVm is null, updateVm.IpAddress, QubeRules.UpdatesProxyPort);
    }

    /// <summary>The template's firewall while it updates: its anti-spoofing, TCP to the proxy, and nothing else.</summary>
    public static FirewallSpec FirewallOf(UpdatesRoute route) =>
        new(route.Template, FirewallAction.Drop, [new FirewallRuleSpec(FirewallAction.Accept, route.ProxyAddress, FirewallProtocol.Tcp, route.Port)]);

    /// <summary>The template's interface for the job: on its UpdateVM's link, isolated, with its own address and MAC, filtered.</summary>
    public static InterfaceSpec InterfaceOf(Qube template, Qube updateVm)
    {
        if (template.IpAddress is null || template.MacAddress is null)
            throw new QubeRuleException($"'{template.Name}' has no address in the inventory, so it cannot reach its updates proxy.");
        return new InterfaceSpec(QubeNetwork.LinkOf(updateVm).Name, template.MacAddress, isolated: true, template.IpAddress, FirewallSpec.NameFor(template.Name));
    }
}
