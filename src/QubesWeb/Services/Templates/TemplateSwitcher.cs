using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Estate;

namespace QubesWeb.Services.Templates;

public sealed record SwitchResult(string Qube, string? Error)
{
    public bool Switched => Error is null;
}

/// <summary>
/// Qube Manager's Template Switcher: a new template for one or many AppVMs, each only while it is halted. Each
/// qube is switched or refused on its own, with the reason.
/// </summary>
public sealed class TemplateSwitcher(Inventory inventory, IHypervisor hypervisor, EstateMonitor estate)
{
    public async Task<IReadOnlyList<SwitchResult>> SwitchAsync(IEnumerable<string> qubes, string template, CancellationToken ct = default)
    {
        var results = new List<SwitchResult>();
        foreach (var name in qubes.Distinct(StringComparer.Ordinal))
        {
            try
            {
                var state = hypervisor.GetDomain(name)?.State ?? RunState.Halted;
                if (state is not RunState.Halted)
                    throw new QubeRuleException($"'{name}' is {state.ToString().ToLowerInvariant()}; shut it down to switch its template.");
                await inventory.UpdateAsync(name, new QubeChanges(Template: template), qubeIsRunning: false, ct);
                var saved = await inventory.GetForDomainAsync(name, ct);
                // The domain's metadata names the template.
                if (hypervisor.GetDomain(name) is not null) hypervisor.Define(DomainSpecs.From(saved));
                results.Add(new SwitchResult(name, null));
            }
            catch (Exception e) when (e is QubeRuleException or HypervisorException or HypervisorUnavailableException)
            {
                results.Add(new SwitchResult(name, e.Message));
            }
        }
        estate.NotifyChanged();
        return results;
    }
}
